"""Query API over the SQL event store, async (:class:`AsyncEventStore`) and sync (:class:`EventStore`).

Both return :class:`~leanllm_otel.event.LLMEvent` objects rebuilt from rows with ``LLMEvent.model_validate``::

    from leanllm_otel.store import EventStore
    with EventStore("sqlite:///events.db") as store:
        for event in store.list_events(model="gpt-4o-mini", labels={"feature": "search"}, errors_only=True):
            print(event.event_id, event.error_kind)
        print(store.stats().by_model)

Failures (unreachable database, no schema yet, malformed URL) raise :class:`StoreError` with a one-line message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import Select, and_, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leanllm_otel.config import mask_url
from leanllm_otel.event import LLMEvent
from leanllm_otel.event_filter import EventFilter, ScoreFilter, probe_features
from leanllm_otel.store import engine as db
from leanllm_otel.store.schema import events
from leanllm_otel.store.stats import GroupStats, StoreStats, Timeline, compute_stats

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

T = TypeVar("T")


class StoreError(Exception):
    """The store could not answer: the message is one line, safe to show (no password)."""


def row_to_event(mapping: Mapping[Any, Any]) -> LLMEvent:
    """Rebuild an ``LLMEvent`` from a stored row (NULL columns take the field defaults)."""
    return LLMEvent.model_validate({k: v for k, v in mapping.items() if v is not None})


def _describe(exc: BaseException, masked_url: str) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    detail = text[0][:300] if text else type(exc).__name__
    lowered = detail.lower()
    if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
        return f"{masked_url} has no leanllm event store yet; run `leanllm-otel migrate` or export some events first"
    if isinstance(exc, TimeoutError):
        return f"database {masked_url} did not answer in time"
    return f"database error on {masked_url}: {detail}"


# --- queries (shared by the sync and async stores) --------------------------------------------------------


async def _get_event(engine: AsyncEngine, event_id: str) -> LLMEvent | None:
    async with engine.connect() as connection:
        row = (await connection.execute(select(events).where(events.c.event_id == event_id))).first()
    return None if row is None else row_to_event(row._mapping)


async def filtered(connection: AsyncConnection, statement: Select[Any], event_filter: EventFilter) -> Select[Any]:
    """``statement`` restricted to ``event_filter`` (probing the schema first when the filter needs it)."""
    features = await probe_features(connection) if event_filter.needs_features else None
    conditions = event_filter.conditions(features)
    return statement.where(and_(*conditions)) if conditions else statement


async def _list_events(engine: AsyncEngine, event_filter: EventFilter, limit: int, offset: int) -> list[LLMEvent]:
    async with engine.connect() as connection:
        statement = (
            (await filtered(connection, select(events), event_filter))
            .order_by(events.c.timestamp.desc(), events.c.event_id.desc())
            .limit(max(0, limit))
            .offset(max(0, offset))
        )
        result = await connection.execute(statement)
        return [row_to_event(row._mapping) for row in result]


async def _count_events(engine: AsyncEngine, event_filter: EventFilter) -> int:
    async with engine.connect() as connection:
        statement = await filtered(connection, select(func.count()).select_from(events), event_filter)
        return int((await connection.execute(statement)).scalar_one())


async def _recorded_since(
    engine: AsyncEngine, after: datetime, event_filter: EventFilter, limit: int
) -> list[tuple[datetime, LLMEvent]]:
    if after.tzinfo is None:
        after = after.replace(tzinfo=timezone.utc)
    async with engine.connect() as connection:
        statement = (
            (await filtered(connection, select(events), event_filter))
            .where(events.c.recorded_at >= after)
            .order_by(events.c.recorded_at.asc(), events.c.timestamp.asc(), events.c.event_id.asc())
            .limit(limit)
        )
        result = await connection.execute(statement)
        return [(row.recorded_at, row_to_event(row._mapping)) for row in result]


async def _stats(engine: AsyncEngine, event_filter: EventFilter, timeline: bool, group_percentiles: bool) -> StoreStats:
    async with engine.connect() as connection:
        return await compute_stats(connection, event_filter, timeline=timeline, group_percentiles=group_percentiles)


def _make_filter(
    correlation_id: str | None,
    model: str | None,
    labels: Mapping[str, str] | None,
    since: datetime | None,
    until: datetime | None,
    errors_only: bool,
    base: EventFilter | None = None,
) -> EventFilter:
    """The keyword criteria, on top of ``base`` when given (a given keyword replaces the base's value)."""
    given: dict[str, Any] = {
        "correlation_id": correlation_id, "model": model, "labels": dict(labels) if labels else None,
        "since": since, "until": until, "errors_only": errors_only or None,
    }  # fmt: skip
    return dataclasses.replace(base or EventFilter(), **{k: v for k, v in given.items() if v is not None})


# --- async store -----------------------------------------------------------------------------------------


class AsyncEventStore:
    """Async queries on the caller's event loop. ``database_url``: ``sqlite:///...`` or ``postgresql://...``."""

    def __init__(self, database_url: str, *, sqlite_busy_timeout_ms: int = 5000, read_only: bool = False) -> None:
        try:
            self._async_url = db.async_database_url(database_url)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        self.masked_url = mask_url(database_url)
        self.dialect = "sqlite" if db.is_sqlite(self._async_url) else "postgresql"
        self._busy_ms = sqlite_busy_timeout_ms
        self._read_only = read_only
        self._engine: AsyncEngine | None = None

    def _get_engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = db.create_engine(
                self._async_url, sqlite_busy_timeout_ms=self._busy_ms, read_only=self._read_only
            )
        return self._engine

    async def run(self, operation: Callable[[AsyncEngine], Awaitable[T]]) -> T:
        """Run a query of your own on the store's engine, with its error handling (failures raise StoreError)."""
        return await self._call(operation)

    async def _call(self, operation: Callable[[AsyncEngine], Awaitable[T]], *, create: bool = False) -> T:
        path = db.sqlite_path(self._async_url)
        if not create and path is not None and not os.path.exists(path):
            # Reading must not leave an empty database file behind a mistyped path.
            raise StoreError(f"no database file at {path}; check the path or run `leanllm-otel migrate` to create it")
        try:
            return await operation(self._get_engine())
        except (sa_exc.SQLAlchemyError, OSError, TimeoutError) as exc:
            raise StoreError(_describe(exc, self.masked_url)) from exc

    async def get_event(self, event_id: str) -> LLMEvent | None:
        """The event with this id, or None."""
        return await self._call(lambda e: _get_event(e, event_id))

    async def list_events(
        self,
        *,
        correlation_id: str | None = None,
        model: str | None = None,
        labels: Mapping[str, str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        errors_only: bool = False,
        limit: int = 100,
        offset: int = 0,
        event_filter: EventFilter | None = None,
    ) -> list[LLMEvent]:
        """Matching events, newest first (``since`` inclusive, ``until`` exclusive, on the event start time).

        ``event_filter`` carries the other criteria (content search, scores, user, thresholds, ...).
        """
        event_filter = _make_filter(correlation_id, model, labels, since, until, errors_only, event_filter)
        return await self._call(lambda e: _list_events(e, event_filter, limit, offset))

    async def count_events(
        self,
        *,
        correlation_id: str | None = None,
        model: str | None = None,
        labels: Mapping[str, str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        errors_only: bool = False,
        event_filter: EventFilter | None = None,
    ) -> int:
        event_filter = _make_filter(correlation_id, model, labels, since, until, errors_only, event_filter)
        return await self._call(lambda e: _count_events(e, event_filter))

    async def stats(
        self,
        *,
        correlation_id: str | None = None,
        model: str | None = None,
        labels: Mapping[str, str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        errors_only: bool = False,
        event_filter: EventFilter | None = None,
        timeline: bool = False,
        group_percentiles: bool = True,
    ) -> StoreStats:
        """Calls, errors, tokens, cost, latency p50/p95 and TTFT p50 overall, per model and per label, computed
        by the database (see :mod:`leanllm_otel.store.stats`).

        ``timeline``: per time bucket too (:class:`Timeline`). ``group_percentiles=False`` leaves the per-model
        and per-label percentiles out (None), the costliest part, for callers that show only the sums.
        """
        event_filter = _make_filter(correlation_id, model, labels, since, until, errors_only, event_filter)
        return await self._call(lambda e: _stats(e, event_filter, timeline, group_percentiles))

    async def recorded_since(
        self, after: datetime, *, event_filter: EventFilter | None = None, limit: int = 1000
    ) -> list[tuple[datetime, LLMEvent]]:
        """``(recorded_at, event)`` for events stored at or after ``after``, oldest first (for ``tail``)."""
        return await self._call(lambda e: _recorded_since(e, after, event_filter or EventFilter(), limit))

    async def migrate(self, revision: str = "head") -> str | None:
        """Upgrade the schema; returns the revision now current."""

        async def _run(engine: AsyncEngine) -> str | None:
            await db.upgrade(engine, revision)
            return await db.current_revision(engine)

        return await self._call(_run, create=True)

    async def current_revision(self) -> str | None:
        """The schema revision of the database (None when never migrated or the SQLite file does not exist)."""
        path = db.sqlite_path(self._async_url)
        if path is not None and not os.path.exists(path):
            return None
        return await self._call(db.current_revision)

    async def close(self) -> None:
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    async def __aenter__(self) -> AsyncEventStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# --- sync store ------------------------------------------------------------------------------------------


class EventStore:
    """The same queries for synchronous code (runs them on a private event-loop thread).

    ``timeout_s`` bounds every call.
    """

    def __init__(self, database_url: str, *, timeout_s: float = 30.0, sqlite_busy_timeout_ms: int = 5000) -> None:
        self._store = AsyncEventStore(database_url, sqlite_busy_timeout_ms=sqlite_busy_timeout_ms)
        self.masked_url = self._store.masked_url
        self._timeout_s = timeout_s
        self._runner = db.LoopThread("leanllm-store")

    def _run(self, operation: Callable[[], Awaitable[T]]) -> T:
        async def _call() -> T:
            return await operation()

        try:
            return self._runner.run(_call(), self._timeout_s)
        except TimeoutError as exc:
            raise StoreError(_describe(exc, self.masked_url)) from None

    def get_event(self, event_id: str) -> LLMEvent | None:
        return self._run(lambda: self._store.get_event(event_id))

    def list_events(self, **criteria: Any) -> list[LLMEvent]:
        """See :meth:`AsyncEventStore.list_events` (same keyword arguments)."""
        return self._run(lambda: self._store.list_events(**criteria))

    def count_events(self, **criteria: Any) -> int:
        return self._run(lambda: self._store.count_events(**criteria))

    def stats(self, **criteria: Any) -> StoreStats:
        return self._run(lambda: self._store.stats(**criteria))

    def recorded_since(
        self, after: datetime, *, event_filter: EventFilter | None = None, limit: int = 1000
    ) -> list[tuple[datetime, LLMEvent]]:
        return self._run(lambda: self._store.recorded_since(after, event_filter=event_filter, limit=limit))

    def migrate(self, revision: str = "head") -> str | None:
        return self._run(lambda: self._store.migrate(revision))

    def current_revision(self) -> str | None:
        return self._run(self._store.current_revision)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self._store.close)
        self._runner.stop()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
