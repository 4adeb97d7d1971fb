"""The store layer: everything that knows the database.

- ``schema`` (the tables), ``migrations`` (their Alembic history), ``engine`` (engines, URLs, ``upgrade``);
- ``insert`` (prepared multi-row inserts) and ``writer`` (one event writer, shared by the SQL exporter and the
  ingest service's sink);
- ``queries`` (the read API: :class:`EventStore`, :class:`AsyncEventStore`), ``stats`` / ``stats_sql`` (aggregates
  computed by the database);
- ``budget_tables`` and ``ledger`` (the guardrails' budget ledger).

Layers above (exporters, guardrails, CLI, viewer) import from here; nothing here imports them. The query API is
importable from the package itself (``from leanllm_otel.store import EventStore``); it loads on first use, so
importing ``leanllm_otel.store.schema`` does not pull in the query layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leanllm_otel.store.queries import (
        AsyncEventStore,
        EventFilter,
        EventStore,
        GroupStats,
        ScoreFilter,
        StoreError,
        StoreStats,
        Timeline,
    )

__all__ = [
    "AsyncEventStore",
    "EventFilter",
    "EventStore",
    "GroupStats",
    "ScoreFilter",
    "StoreError",
    "StoreStats",
    "Timeline",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from leanllm_otel.store import queries

        return getattr(queries, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
