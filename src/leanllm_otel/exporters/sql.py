"""``SQLSpanExporter``: each kept LLM span becomes one ``LLMEvent`` row in SQLite or PostgreSQL.

``export()`` runs on the batch processor's worker thread (and on whichever thread calls ``force_flush`` or
``shutdown``). It maps spans to rows with the one mapping of ``event.py`` (``span_row_values``: the fields a span
sets, the rest being ``LLMEvent`` defaults; no model built per span), then hands one idempotent write per batch
(:class:`~leanllm_otel.store.writer.EventWriter`, the store's one event writer) to :class:`Delivery` (retries,
budget, circuit breaker, drop accounting). Nothing here raises into the application.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.event import LLMEvent, is_llm_span_attributes, span_row_values
from leanllm_otel.exporters.delivery import (
    CircuitBreaker,
    Delivery,
    DropCounter,
    PermanentError,
    RetryPolicy,
)
from leanllm_otel.store import engine as db
from leanllm_otel.store.insert import PreparedInsert
from leanllm_otel.store.writer import EventWriter

_logger = logging.getLogger(__name__)

REASON_MAPPING_ERROR = "mapping_error"


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
        self.drops = drops if drops is not None else DropCounter()
        if on_dropped_events is not None:
            self.drops.add_callback(on_dropped_events)
        self.delivery = Delivery(
            "sql",
            retry_policy or RetryPolicy.from_config(config),
            breaker or CircuitBreaker.from_config(config),
            self.drops,
        )
        self._shutdown = False
        self.exported_count = 0
        self._writer = EventWriter(
            config.database_url,
            timeout_s=config.export_timeout_ms / 1000.0,
            auto_migrate=config.auto_migrate,
            sqlite_busy_timeout_ms=sqlite_busy_timeout_ms,
        )

    @property
    def database(self) -> db.Database:
        return self._writer.database

    # --- mapping ----------------------------------------------------------------------------------------

    @staticmethod
    def event_to_row(event: LLMEvent, recorded_at: datetime) -> dict[str, Any]:
        """The stored row of ``event``: ``LLMEvent.to_row()`` plus the store's ``recorded_at``."""
        return EventWriter.event_to_row(event, recorded_at)

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
        return self._writer.prepared()

    def _attempt_batch(self, batch: _Batch) -> None:
        """Write ``batch``; if the database refuses it, row by row (see :meth:`_write_salvaging`).

        The spans are mapped on the first attempt; a retry writes the same rows. A retryable failure in the
        middle re-raises: the retry writes the whole batch again, and rows already stored are skipped by
        ``ON CONFLICT DO NOTHING``.
        """
        if batch.rows is None:
            self._rows(batch)
        assert batch.rows is not None
        refused = self._writer.write_rows(batch.rows)
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

    def write_rows(self, rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
        """One idempotent write of ``rows`` (see :meth:`event_to_row`), no retry and no drop accounting.

        Rows the database refuses are written one by one (repaired when a character is the problem); returns those
        still refused, as (index into ``rows``, reason). Raises ``RetryableError`` (store unavailable). For
        services that answer their own callers instead of retrying (the ingest server).
        """
        return self._writer.write_rows(rows)

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
        self._writer.migrate(timeout_s)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30000) -> None:
        """Stop retrying (bounded), dispose the engine and stop the loop thread."""
        self._shutdown = True
        self.delivery.close()
        self._writer.close(max(0.1, min(5.0, timeout_millis / 1000.0)))
