"""``EventWriter``: one idempotent write of event rows into the SQL store, shared by the SQL exporter and the
ingest service's sink.

A write is one transaction of multi-row ``INSERT ... ON CONFLICT (event_id) DO NOTHING`` statements
(:class:`~leanllm_otel.store.insert.PreparedInsert`) on SQLite, run on the calling thread by the standard library's
driver for a file (:class:`~leanllm_otel.store.sqlite_write.SqliteWrite`), one ``INSERT ... SELECT FROM unnest(...)``
statement on PostgreSQL (:class:`~leanllm_otel.store.pg_write.UnnestInsert`). When the database refuses a batch, the
rows are written one by one, and a refused row once more with what the store cannot carry repaired (lone surrogates;
NUL in PostgreSQL). Failures are classified as :class:`~leanllm_otel.delivery_errors.RetryableError` (the store may
recover) or :class:`~leanllm_otel.delivery_errors.PermanentError` (this batch never will); retrying is the
caller's business. The async engine (migrations; PostgreSQL's write; an in-memory SQLite store) lives on a private
event-loop thread (:class:`~leanllm_otel.store.engine.Database`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import sqlite3
import weakref
from datetime import datetime
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from leanllm_otel.delivery_errors import PermanentError, RetryableError
from leanllm_otel.event import LLMEvent
from leanllm_otel.repair import repair, with_repair_finding
from leanllm_otel.store import engine as db
from leanllm_otel.store.insert import PreparedInsert
from leanllm_otel.store.pg_write import UnnestInsert, is_refused_value
from leanllm_otel.store.schema import events
from leanllm_otel.store.sqlite_write import SqliteWrite

__all__ = ["EventWriter", "classify"]

_logger = logging.getLogger(__name__)

_COLUMNS = frozenset(events.c.keys())
_FORK_MIGRATION_WAIT_S = 15.0


def _is_asyncpg_data_error(exc: BaseException) -> bool:
    # SQLAlchemy wraps asyncpg's client-side DataError (a value its codec cannot encode, e.g. an int wider than
    # 64 bits) in its generic DBAPIError; the driver's exception is the cause of ``exc.orig``.
    cause = getattr(getattr(exc, "orig", None), "__cause__", None)
    if cause is None or not type(cause).__module__.startswith("asyncpg"):
        return False
    from asyncpg.exceptions import DataError

    return isinstance(cause, DataError)


def classify(exc: BaseException) -> Exception:
    """Store failure -> ``RetryableError`` (the backend may recover) or ``PermanentError`` (this batch never will)."""
    if isinstance(exc, (RetryableError, PermanentError)):
        return exc
    if isinstance(exc, (sa_exc.DataError, sa_exc.IntegrityError, sqlite3.DataError, sqlite3.IntegrityError)):
        return PermanentError(f"rejected_by_database: {type(exc).__name__}")
    if _is_asyncpg_data_error(exc):
        return PermanentError(f"rejected_by_database: {type(exc).__name__}")
    if isinstance(exc, (sqlite3.ProgrammingError, sqlite3.InterfaceError)):  # a value the driver cannot bind
        return PermanentError(f"unwritable_row: {type(exc).__name__}")
    if isinstance(exc, sa_exc.StatementError) and not isinstance(exc, sa_exc.DBAPIError):
        return PermanentError(f"unwritable_row: {type(exc.orig).__name__}")  # e.g. a value JSON cannot encode
    if isinstance(exc, (OverflowError, ValueError, TypeError, UnicodeError)):
        # A value the driver cannot bind (an int wider than 64 bits, a lone surrogate): this row never will.
        return PermanentError(f"unwritable_row: {type(exc).__name__}")
    if type(exc).__module__.startswith("asyncpg") and is_refused_value(exc):  # the unnest write, unwrapped
        return PermanentError(f"rejected_by_database: {type(exc).__name__}")
    if isinstance(exc, TimeoutError):
        return RetryableError("timeout")
    return RetryableError(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")


class EventWriter:
    """Writes event rows to ``database_url``; ``auto_migrate`` starts the schema upgrade in the background at once
    (the first write waits for it, or retries it). ``timeout_s`` bounds one write attempt."""

    def __init__(
        self,
        database_url: str,
        *,
        timeout_s: float,
        auto_migrate: bool = True,
        name: str = "leanllm-sql-exporter",
        sqlite_busy_timeout_ms: int = 5000,
    ) -> None:
        self._timeout_s = timeout_s
        self._db = db.Database(
            database_url,
            name=name,
            sqlite_busy_timeout_ms=sqlite_busy_timeout_ms,
            connect_timeout_s=min(10.0, timeout_s),
            pre_ping=False,  # its PostgreSQL write checks the connection itself (store.pg_write); SQLite has no ping
        )
        self._schema_ready = not auto_migrate
        # SQLite stores NUL in text; PostgreSQL refuses it in text and JSONB (lone surrogates: neither).
        self._refuses_nul = make_url(self._db.async_url).get_backend_name() != "sqlite"
        self._migration: asyncio.Future[None] | None = None
        self._insert: PreparedInsert | None = None
        self._unnest: UnnestInsert | None = None
        path = db.sqlite_path(self._db.async_url)
        self._sqlite = (
            SqliteWrite(path, busy_timeout_ms=sqlite_busy_timeout_ms, timeout_s=timeout_s) if path is not None else None
        )
        db.preload(self._db.async_url)  # before any background work: see its docstring (fork safety)
        self._start_migration: concurrent.futures.Future[None] | None = None
        if auto_migrate:
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
        """The database and its loop thread."""
        return self._db

    @staticmethod
    def event_to_row(event: LLMEvent, recorded_at: datetime) -> dict[str, Any]:
        """The stored row of ``event``: ``LLMEvent.to_row()`` plus the store's ``recorded_at``."""
        row = event.to_row()
        row["recorded_at"] = recorded_at
        if row.keys() - _COLUMNS:  # an LLMEvent field with no column yet: keep the row writable
            row = {k: v for k, v in row.items() if k in _COLUMNS}
        return row

    def prepared(self) -> PreparedInsert:
        """The insert statements for this database's dialect (built once)."""
        if self._insert is None:
            self._insert = PreparedInsert(make_url(self._db.async_url).get_dialect()())
        return self._insert

    def _unnest_insert(self) -> UnnestInsert | None:
        """The unnest write on PostgreSQL (``store.pg_write``); None on SQLite, which takes the multi-row INSERT."""
        if self._unnest is None and self._refuses_nul:
            self._unnest = UnnestInsert(make_url(self._db.async_url).get_dialect()())
        return self._unnest

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

    async def _write_unnest(
        self, engine: AsyncEngine, unnest: UnnestInsert, columns: list[str], arrays: list[list[Any]]
    ) -> None:
        await self._ensure_schema(engine)
        try:
            await unnest.write(engine, columns, arrays)
        except sa_exc.OperationalError:
            await engine.dispose()  # see _write
            raise

    def _attempt(self, rows: list[dict[str, Any]]) -> None:
        try:
            unnest = self._unnest_insert()
            if unnest is not None:
                columns, arrays = self.prepared().arrays(rows)
                self._db.run(lambda engine: self._write_unnest(engine, unnest, columns, arrays), self._timeout_s)
                return
            statements = self.prepared().statements(rows)  # a value it cannot encode is a PermanentError
            if self._sqlite is not None:
                if not self._schema_ready:
                    self._db.run(self._ensure_schema, self._timeout_s)
                self._sqlite.write(statements)
                return
            self._db.run(lambda engine: self._write(engine, statements), self._timeout_s)
        except Exception as exc:
            raise classify(exc) from exc

    def write_rows(self, rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
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

    def migrate(self, timeout_s: float | None = None) -> None:
        """Upgrade the schema to head now (``auto_migrate`` does this lazily before the first write)."""
        self._schema_ready = False  # force a check even when auto_migrate is off
        self._db.run(self._ensure_schema, timeout_s if timeout_s is not None else self._timeout_s)

    def release_connections(self, timeout_s: float = 10.0) -> None:
        """Close the connections no write is using (the next write opens new ones), e.g. before the store's file
        system is remounted."""
        if self._sqlite is not None:
            self._sqlite.release()

        async def _dispose(engine: AsyncEngine) -> None:
            await engine.dispose()

        self._db.run(_dispose, timeout_s)

    def close(self, timeout_s: float) -> None:
        """Stop a SQLite write still running (rolled back), dispose the engine and stop the loop thread."""
        if self._sqlite is not None:
            self._sqlite.close(timeout_s)
        self._db.close(timeout=timeout_s)
        # A start-up migration the closed loop never finished can no longer finish: a later fork must not wait.
        self._start_migration = None
