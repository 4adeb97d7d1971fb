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
import math
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from leanllm_otel.config import mask_url
from leanllm_otel.event import LLMEvent
from leanllm_otel.exporters import engine as db
from leanllm_otel.exporters.schema import events

__all__ = [
    "AsyncEventStore",
    "EventFilter",
    "EventStore",
    "GroupStats",
    "StoreError",
    "StoreStats",
]

T = TypeVar("T")


class StoreError(Exception):
    """The store could not answer: the message is one line, safe to show (no password)."""


@dataclass(frozen=True)
class EventFilter:
    """Which events a query covers. Every given criterion must match (``labels``: every key=value pair)."""

    correlation_id: str | None = None
    model: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    since: datetime | None = None
    until: datetime | None = None
    errors_only: bool = False

    def conditions(self) -> list[ColumnElement[bool]]:
        c = events.c
        conditions: list[ColumnElement[bool]] = []
        if self.correlation_id is not None:
            conditions.append(c.correlation_id == self.correlation_id)
        if self.model is not None:
            conditions.append(c.model == self.model)
        for key, value in self.labels.items():
            conditions.append(c.labels[key].as_string() == str(value))
        if self.since is not None:
            conditions.append(c.timestamp >= _aware(self.since))
        if self.until is not None:
            conditions.append(c.timestamp < _aware(self.until))
        if self.errors_only:
            conditions.append(c.status == "error")
        return conditions


@dataclass
class GroupStats:
    """Aggregates for one group (a model, a ``label=value``, or everything)."""

    key: str
    calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost: float = 0.0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    ttft_p50_ms: float | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "error_rate": self.error_rate}


@dataclass
class StoreStats:
    """``stats()`` result: everything, then per model and per label (``name=value``), most calls first."""

    total: GroupStats
    by_model: list[GroupStats]
    by_label: list[GroupStats]

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total.to_dict(),
            "by_model": [g.to_dict() for g in self.by_model],
            "by_label": [g.to_dict() for g in self.by_label],
        }


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile of sorted ``values`` (``q`` in 0..1)."""
    if not values:
        return None
    position = (len(values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


class _Accumulator:
    def __init__(self, key: str) -> None:
        self.stats = GroupStats(key)
        self.latencies: list[float] = []
        self.ttfts: list[float] = []

    def add(self, row: Any) -> None:
        s = self.stats
        s.calls += 1
        if row.status == "error":
            s.errors += 1
        s.input_tokens += row.input_tokens or 0
        s.output_tokens += row.output_tokens or 0
        total = row.total_tokens
        s.total_tokens += total if total is not None else (row.input_tokens or 0) + (row.output_tokens or 0)
        s.cost += row.cost or 0.0
        if row.latency_ms is not None:
            self.latencies.append(float(row.latency_ms))
        if row.time_to_first_token_ms is not None:
            self.ttfts.append(float(row.time_to_first_token_ms))

    def finish(self) -> GroupStats:
        self.latencies.sort()
        self.ttfts.sort()
        self.stats.latency_p50_ms = _percentile(self.latencies, 0.5)
        self.stats.latency_p95_ms = _percentile(self.latencies, 0.95)
        self.stats.ttft_p50_ms = _percentile(self.ttfts, 0.5)
        self.stats.cost = round(self.stats.cost, 10)
        return self.stats


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


def _filtered(statement: Select[Any], event_filter: EventFilter) -> Select[Any]:
    conditions = event_filter.conditions()
    return statement.where(and_(*conditions)) if conditions else statement


async def _list_events(engine: AsyncEngine, event_filter: EventFilter, limit: int, offset: int) -> list[LLMEvent]:
    statement = (
        _filtered(select(events), event_filter)
        .order_by(events.c.timestamp.desc(), events.c.event_id.desc())
        .limit(max(0, limit))
        .offset(max(0, offset))
    )
    async with engine.connect() as connection:
        result = await connection.execute(statement)
        return [row_to_event(row._mapping) for row in result]


async def _count_events(engine: AsyncEngine, event_filter: EventFilter) -> int:
    statement = _filtered(select(func.count()).select_from(events), event_filter)
    async with engine.connect() as connection:
        return int((await connection.execute(statement)).scalar_one())


async def _recorded_since(
    engine: AsyncEngine, after: datetime, event_filter: EventFilter, limit: int
) -> list[tuple[datetime, LLMEvent]]:
    statement = (
        _filtered(select(events), event_filter)
        .where(events.c.recorded_at >= _aware(after))
        .order_by(events.c.recorded_at.asc(), events.c.timestamp.asc(), events.c.event_id.asc())
        .limit(limit)
    )
    async with engine.connect() as connection:
        result = await connection.execute(statement)
        return [(row.recorded_at, row_to_event(row._mapping)) for row in result]


async def _stats(engine: AsyncEngine, event_filter: EventFilter) -> StoreStats:
    c = events.c
    statement = _filtered(
        select(
            c.model, c.labels, c.status, c.input_tokens, c.output_tokens, c.total_tokens, c.cost, c.latency_ms,
            c.time_to_first_token_ms,
        ),
        event_filter,
    )
    total = _Accumulator("all")
    models: dict[str, _Accumulator] = {}
    labels: dict[str, _Accumulator] = {}
    async with engine.connect() as connection:
        result = await connection.stream(statement.execution_options(yield_per=2000))
        async for row in result:
            total.add(row)
            model = row.model or "(unknown)"
            (models.get(model) or models.setdefault(model, _Accumulator(model))).add(row)
            for name, value in (row.labels or {}).items():
                key = f"{name}={value}"
                (labels.get(key) or labels.setdefault(key, _Accumulator(key))).add(row)

    def ordered(groups: Iterable[_Accumulator]) -> list[GroupStats]:
        return sorted((g.finish() for g in groups), key=lambda g: (-g.calls, g.key))

    return StoreStats(total=total.finish(), by_model=ordered(models.values()), by_label=ordered(labels.values()))


def _make_filter(
    correlation_id: str | None,
    model: str | None,
    labels: Mapping[str, str] | None,
    since: datetime | None,
    until: datetime | None,
    errors_only: bool,
) -> EventFilter:
    return EventFilter(correlation_id, model, dict(labels or {}), since, until, errors_only)


# --- async store -----------------------------------------------------------------------------------------


class AsyncEventStore:
    """Async queries on the caller's event loop. ``database_url``: ``sqlite:///...`` or ``postgresql://...``."""

    def __init__(self, database_url: str, *, sqlite_busy_timeout_ms: int = 5000) -> None:
        try:
            self._async_url = db.async_database_url(database_url)
        except ValueError as exc:
            raise StoreError(str(exc)) from None
        self.masked_url = mask_url(database_url)
        self._busy_ms = sqlite_busy_timeout_ms
        self._engine: AsyncEngine | None = None

    def _get_engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = db.create_engine(self._async_url, sqlite_busy_timeout_ms=self._busy_ms)
        return self._engine

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
    ) -> list[LLMEvent]:
        """Matching events, newest first (``since`` inclusive, ``until`` exclusive, on the event start time)."""
        event_filter = _make_filter(correlation_id, model, labels, since, until, errors_only)
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
    ) -> int:
        event_filter = _make_filter(correlation_id, model, labels, since, until, errors_only)
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
    ) -> StoreStats:
        """Calls, errors, tokens, cost, latency p50/p95 and TTFT p50 overall, per model and per label."""
        event_filter = _make_filter(correlation_id, model, labels, since, until, errors_only)
        return await self._call(lambda e: _stats(e, event_filter))

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

    def recorded_since(self, after: datetime, *, event_filter: EventFilter | None = None,
                       limit: int = 1000) -> list[tuple[datetime, LLMEvent]]:
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
