"""``SQLSpanExporter``: each kept LLM span becomes one ``LLMEvent`` row in SQLite or PostgreSQL.

``export()`` runs on the batch processor's worker thread (and on whichever thread calls ``force_flush`` or
``shutdown``). It maps spans to rows with the one mapping of ``event.py`` (``span_row_values``: the fields a span
sets, the rest being ``LLMEvent`` defaults; no model built per span), then hands one idempotent write per batch
(``insert.PreparedInsert``: multi-row ``INSERT ... ON CONFLICT (event_id) DO NOTHING``) to :class:`Delivery`
(retries, budget, circuit breaker, drop accounting). The async SQLAlchemy engine lives on a private event-loop
thread owned by the exporter and recreated in a forked child. Nothing here raises into the application.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.event import LLMEvent, is_llm_span_attributes, span_row_values
from leanllm_otel.exporters.delivery import (
    CircuitBreaker,
    Delivery,
    DropCounter,
    PermanentError,
    RetryableError,
    RetryPolicy,
)
from leanllm_otel.repair import repair, with_repair_finding
from leanllm_otel.store import engine as db
from leanllm_otel.store.insert import PreparedInsert
from leanllm_otel.store.schema import events

_logger = logging.getLogger(__name__)

REASON_MAPPING_ERROR = "mapping_error"
_COLUMNS = frozenset(events.c.keys())


def _is_asyncpg_data_error(exc: BaseException) -> bool:
    # SQLAlchemy wraps asyncpg's client-side DataError (a value its codec cannot encode, e.g. an int wider than
    # 64 bits) in its generic DBAPIError; the driver's exception is the cause of ``exc.orig``.
    cause = getattr(getattr(exc, "orig", None), "__cause__", None)
    if cause is None or not type(cause).__module__.startswith("asyncpg"):
        return False
    from asyncpg.exceptions import DataError

    return isinstance(cause, DataError)


def _classify(exc: BaseException) -> Exception:
    """Store failure -> ``RetryableError`` (the backend may recover) or ``PermanentError`` (this batch never will)."""
    if isinstance(exc, (RetryableError, PermanentError)):
        return exc
    if isinstance(exc, (sa_exc.DataError, sa_exc.IntegrityError)) or _is_asyncpg_data_error(exc):
        return PermanentError(f"rejected_by_database: {type(exc).__name__}")
    if isinstance(exc, sa_exc.StatementError) and not isinstance(exc, sa_exc.DBAPIError):
        return PermanentError(f"unwritable_row: {type(exc.orig).__name__}")  # e.g. a value JSON cannot encode
    if isinstance(exc, (OverflowError, ValueError, TypeError, UnicodeError)):
        # A value the driver cannot bind (an int wider than 64 bits, a lone surrogate): this row never will.
        return PermanentError(f"unwritable_row: {type(exc).__name__}")
    if isinstance(exc, TimeoutError):
        return RetryableError("timeout")
    return RetryableError(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")


_FORK_MIGRATION_WAIT_S = 15.0


@dataclass
class _Batch:
    """One ``export()`` call's LLM spans, and what became of them across delivery attempts."""

    spans: list[ReadableSpan]
    rows: list[dict[str, Any]] | None = None  # mapped on the first attempt
    unmapped: int = 0
    rejected: int = 0


class SQLSpanExporter(SpanExporter):
    """Writes leanllm LLM spans to the SQL event store; other spans are ignored.

    With no arguments it reads ``LEANLLM_*`` (the ``opentelemetry-instrument`` entry point builds it that way).
    ``database_url`` overrides ``LEANLLM_DATABASE_URL``; ``config`` replaces the environment entirely.
    ``on_dropped_events(count, reason)`` is called for every batch given up on; ``drops`` shares a counter
    with other components (the batch processor's queue-full drops).
    Raises ``ValueError`` at construction for a missing or malformed URL, or conflicting settings.
    ``export`` may be called from several threads at once (``supports_concurrent_export``).
    """

    supports_concurrent_export: ClassVar[bool] = True
    # A value the store cannot hold (a lone surrogate; NUL in PostgreSQL) is replaced with U+FFFD when the
    # database refuses the row, and counted under REPAIRED_VALUE in its findings: the event is kept.
    repairs_values: ClassVar[bool] = True

    def __init__(
        self,
        database_url: str | None = None,
        *,
        config: LeanLLMConfig | None = None,
        on_dropped_events: Callable[[int, str], None] | None = None,
        drops: DropCounter | None = None,
        retry_policy: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        sqlite_busy_timeout_ms: int = 5000,
    ) -> None:
        if config is None:
            config = (
                LeanLLMConfig.from_env() if database_url is None else LeanLLMConfig.from_env(database_url=database_url)
            )
        elif database_url is not None:
            config = LeanLLMConfig.model_validate({**config.model_dump(), "database_url": database_url})
        if config.database_url is None:
            raise ValueError(
                "SQLSpanExporter needs a database URL: set LEANLLM_DATABASE_URL (sqlite:///events.db or "
                "postgresql://user:password@host/db) or pass database_url="
            )
        self.config = config
        self._timeout_s = config.export_timeout_ms / 1000.0
        self._db = db.Database(
            config.database_url,
            name="leanllm-sql-exporter",
            sqlite_busy_timeout_ms=sqlite_busy_timeout_ms,
            connect_timeout_s=min(10.0, self._timeout_s),
        )
        self.drops = drops if drops is not None else DropCounter()
        if on_dropped_events is not None:
            self.drops.add_callback(on_dropped_events)
        self.delivery = Delivery(
            "sql",
            retry_policy or RetryPolicy.from_config(config),
            breaker or CircuitBreaker.from_config(config),
            self.drops,
        )
        self._schema_ready = not config.auto_migrate
        # SQLite stores NUL in text; PostgreSQL refuses it in text and JSONB (lone surrogates: neither).
        self._refuses_nul = make_url(self._db.async_url).get_backend_name() != "sqlite"
        self._migration: asyncio.Future[None] | None = None
        self._insert: PreparedInsert | None = None
        self._shutdown = False
        self.exported_count = 0
        db.preload(self._db.async_url)  # before any background work: see its docstring (fork safety)
        self._start_migration: concurrent.futures.Future[None] | None = None
        if config.auto_migrate:
            # "Migrate at start" without blocking the application: the first write waits for it (or retries it).
            self._start_migration = self._db.submit(self._ensure_schema)
            self._start_migration.add_done_callback(self._log_start_failure)
            if hasattr(os, "register_at_fork"):
                weak = weakref.WeakMethod(self._finish_start_migration)

                def _before_fork() -> None:
                    method = weak()
                    if method is not None:
                        method()

                os.register_at_fork(before=_before_fork)

    @property
    def database(self) -> db.Database:
        return self._db

    # --- mapping ----------------------------------------------------------------------------------------

    @staticmethod
    def event_to_row(event: LLMEvent, recorded_at: datetime) -> dict[str, Any]:
        """The stored row of ``event``: ``LLMEvent.to_row()`` plus the store's ``recorded_at``."""
        row = event.to_row()
        row["recorded_at"] = recorded_at
        if row.keys() - _COLUMNS:  # an LLMEvent field with no column yet: keep the row writable
            row = {k: v for k, v in row.items() if k in _COLUMNS}
        return row

    def _rows(self, batch: _Batch) -> None:
        """Map ``batch.spans`` (LLM spans) to rows; spans that cannot be mapped are logged and counted."""
        recorded_at = datetime.now(timezone.utc)
        batch.rows, batch.unmapped = [], 0
        for span in batch.spans:
            try:
                row = span_row_values(span)
            except Exception:
                batch.unmapped += 1
                _logger.exception("leanllm-otel: could not map span %r to an event", span.name)
                continue
            row["recorded_at"] = recorded_at
            batch.rows.append(row)

    # --- writing ----------------------------------------------------------------------------------------

    def _prepared(self) -> PreparedInsert:
        if self._insert is None:
            self._insert = PreparedInsert(make_url(self._db.async_url).get_dialect()())
        return self._insert

    async def _ensure_schema(self, engine: AsyncEngine) -> None:
        # Runs on the loop thread only, so no lock: concurrent callers share one migration task.
        if self._schema_ready:
            return
        task = self._migration
        if (
            task is None
            or task.get_loop() is not asyncio.get_running_loop()
            or (task.done() and (task.cancelled() or task.exception() is not None))
        ):
            task = self._migration = asyncio.ensure_future(db.upgrade(engine))
        await asyncio.shield(task)
        self._schema_ready = True

    def _finish_start_migration(self) -> None:
        """Before ``fork()``: let a start-up migration finish (bounded) so no child inherits it half done.

        Pre-fork servers (``gunicorn --preload``) fork right after start-up, while the migration may be importing
        revision modules and holding locks on the parent's loop thread; a child inheriting that state can hang.
        """
        future = self._start_migration
        if future is None or future.done():
            return
        with contextlib.suppress(Exception):
            future.result(timeout=_FORK_MIGRATION_WAIT_S)

    def _log_start_failure(self, future: concurrent.futures.Future[None]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            _logger.warning(
                "leanllm-otel: store %s not ready at start (%s: %s); retrying on export",
                self._db.masked_url,
                type(exc).__name__,
                str(exc).splitlines()[0][:200] if str(exc) else "",
            )

    async def _write(self, engine: AsyncEngine, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        await self._ensure_schema(engine)
        try:
            async with engine.begin() as connection:
                for sql, parameters in statements:
                    await connection.exec_driver_sql(sql, parameters)
        except sa_exc.OperationalError:
            # Start the next attempt on fresh connections: SQLite keeps a connection read-only once it opened
            # a read-only file, and a restarted PostgreSQL leaves dead sockets in the pool.
            await engine.dispose()
            raise

    def _attempt(self, rows: list[dict[str, Any]]) -> None:
        try:
            statements = self._prepared().statements(rows)  # a value it cannot encode is a PermanentError
            self._db.run(lambda engine: self._write(engine, statements), self._timeout_s)
        except Exception as exc:
            raise _classify(exc) from exc

    def _attempt_batch(self, batch: _Batch) -> None:
        """Write ``batch``; if the database refuses it, row by row (see :meth:`_write_salvaging`).

        The spans are mapped on the first attempt; a retry writes the same rows. A retryable failure in the
        middle re-raises: the retry writes the whole batch again, and rows already stored are skipped by
        ``ON CONFLICT DO NOTHING``.
        """
        if batch.rows is None:
            self._rows(batch)
        assert batch.rows is not None
        refused = self._write_salvaging(batch.rows)
        if not refused:
            return
        reason = refused[-1][1]
        if len(refused) == len(batch.rows):
            raise PermanentError(reason)
        _logger.warning(
            "leanllm-otel sql: the store refused %d of %d event(s): %s", len(refused), len(batch.rows), reason
        )
        self.drops.add(len(refused), reason.split(":", 1)[0] or "rejected_by_database")
        batch.rejected = len(refused)

    def _write_salvaging(self, rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
        """Write ``rows``; when the database refuses the batch, write them one by one, and a refused row once more
        with what the store cannot carry (lone surrogates; NUL in PostgreSQL) repaired. Returns the rows still refused
        (index, reason); raises ``RetryableError`` when the store is unavailable."""
        try:
            self._attempt(rows)
            return []
        except PermanentError as exc:
            first = exc.reason
        refused: list[tuple[int, str]] = []
        for index, row in enumerate(rows):
            reason = first
            if len(rows) > 1:
                try:
                    self._attempt([row])
                    continue
                except PermanentError as exc:
                    reason = exc.reason
            repaired, count = repair(row, nul=self._refuses_nul)
            if count:
                repaired["findings"] = with_repair_finding(repaired.get("findings") or {}, count)
                try:
                    self._attempt([repaired])
                    continue
                except PermanentError as exc:
                    reason = exc.reason
            refused.append((index, reason))
        return refused

    def write_rows(self, rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
        """One idempotent write of ``rows`` (see :meth:`event_to_row`), no retry and no drop accounting.

        Rows the database refuses are written one by one (repaired when a character is the problem); returns those
        still refused, as (index into ``rows``, reason). Raises ``RetryableError`` (store unavailable). For
        services that answer their own callers instead of retrying (the ingest server).
        """
        return self._write_salvaging(rows)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write the LLM spans of ``spans``; returns FAILURE when the batch was dropped. Never raises.

        Each span is counted once: written, refused by the database, unmappable (``mapping_error``), or dropped
        with the whole batch under the delivery's reason.
        """
        try:
            batch = _Batch([span for span in spans if is_llm_span_attributes(span.attributes)])
            if not batch.spans:
                return SpanExportResult.SUCCESS
            if self._shutdown:
                self.drops.add(len(batch.spans), "already_shutdown")
                return SpanExportResult.FAILURE
            if not self.delivery.send(lambda: self._attempt_batch(batch), len(batch.spans)):
                return SpanExportResult.FAILURE
            if batch.unmapped:
                self.drops.add(batch.unmapped, REASON_MAPPING_ERROR)
            self.exported_count += len(batch.rows or ()) - batch.rejected
            return SpanExportResult.SUCCESS
        except Exception:  # pragma: no cover - defensive: export must never raise
            _logger.exception("leanllm-otel: SQL export failed")
            return SpanExportResult.FAILURE

    def migrate(self, timeout_s: float | None = None) -> None:
        """Upgrade the schema to head now (``auto_migrate`` does this lazily before the first write)."""
        self._schema_ready = False  # force a check even when auto_migrate is off
        self._db.run(self._ensure_schema, timeout_s if timeout_s is not None else self._timeout_s)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30000) -> None:
        """Stop retrying (bounded), dispose the engine and stop the loop thread."""
        self._shutdown = True
        self.delivery.close()
        self._db.close(timeout=max(0.1, min(5.0, timeout_millis / 1000.0)))
        # A start-up migration the closed loop never finished can no longer finish: a later fork must not wait.
        self._start_migration = None
