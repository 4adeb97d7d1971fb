"""``SQLEventSink``: the ingest service's writer into the SQL event store.

It writes with the store's one event writer (:class:`leanllm_otel.store.writer.EventWriter`: engine, loop thread,
migrations, the idempotent ``INSERT ... ON CONFLICT (event_id) DO NOTHING``), as the SQL exporter does, but without
a retry loop: the ingest service answers 503 and the sending exporter retries, so one slow database never holds an
HTTP request for a whole retry budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.event import LLMEvent
from leanllm_otel.sensitive import mask_url
from leanllm_otel.store.writer import EventWriter

__all__ = ["SQLEventSink"]


class SQLEventSink:
    """Writes ``LLMEvent`` objects to ``database_url`` (``sqlite:///...`` or ``postgresql://...``).

    ``write`` is idempotent on ``event_id`` (the first write of an id wins) and raises ``RetryableError`` (store
    unavailable) from :mod:`leanllm_otel.delivery_errors`; rows the database refuses are returned, not raised.
    """

    def __init__(self, database_url: str, *, write_timeout_s: float = 10.0) -> None:
        LeanLLMConfig(database_url=database_url)  # the URL checks every store entry point makes
        # auto_migrate off: the writer would start a migration in the background, racing migrate() below
        # (two Alembic upgrades at once on one database). The server migrates explicitly at start instead.
        self._writer = EventWriter(
            database_url, timeout_s=max(1, int(write_timeout_s * 1000)) / 1000.0, auto_migrate=False
        )
        self.masked_url = mask_url(database_url)

    def migrate(self, timeout_s: float | None = None) -> None:
        """Bring the schema to head now (raises when the database cannot be reached)."""
        self._writer.migrate(timeout_s)

    def write(self, events: Sequence[LLMEvent]) -> list[tuple[int, str]]:
        """Store ``events``; returns those the database refused (index into ``events``, reason without values).

        One refused row never costs the others; a value the store cannot hold (a lone surrogate, NUL) is repaired
        (U+FFFD, counted under ``REPAIRED_VALUE`` in the event's findings) and the row kept.
        """
        if not events:
            return []
        recorded_at = datetime.now(timezone.utc)
        return self._writer.write_rows([EventWriter.event_to_row(event, recorded_at) for event in events])

    def close(self, timeout_s: float = 5.0) -> None:
        self._writer.close(max(0.1, min(5.0, timeout_s)))
