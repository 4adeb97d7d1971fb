"""The viewer's reads, on a read-only :class:`~leanllm_otel.store.AsyncEventStore`.

List pages select only the columns a row shows (never the content) and page by keyset on ``(timestamp,
event_id)``, so a page costs the same on page one and page one thousand, and new events arriving between two clicks
do not shift the rows. Lineage looks for relatives in a window around the event's time (the trace id has no index:
it would slow every write, see revision 0005).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leanllm_otel.event import LLMEvent
from leanllm_otel.event_filter import EventFilter, StoreFeatures, probe_features
from leanllm_otel.scores import Score, score_names, scores_for
from leanllm_otel.store.queries import AsyncEventStore, StoreStats, filtered, row_to_event
from leanllm_otel.store.schema import events

__all__ = ["Cursor", "EventPage", "EventRow", "Lineage", "ViewerQueries"]

_c = events.c
_ROW_COLUMNS = (
    _c.event_id, _c.timestamp, _c.model, _c.provider, _c.operation, _c.status, _c.error_kind, _c.error_type,
    _c.latency_ms, _c.time_to_first_token_ms, _c.input_tokens, _c.output_tokens, _c.cost, _c.labels, _c.stream,
    _c.recorded_at, _c.end_timestamp,
)  # fmt: skip
LINEAGE_WINDOW = timedelta(hours=6)  # relatives (same trace, children) are looked for this far around the event
_FEATURES_TTL_S = 10.0


@dataclass(frozen=True)
class Cursor:
    """A position in the newest-first order: the ``(timestamp, event_id)`` of a row."""

    timestamp: datetime
    event_id: str

    def encode(self) -> str:
        return f"{self.timestamp.isoformat()}~{self.event_id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        stamp, sep, event_id = text.partition("~")
        if not sep or not event_id:
            raise ValueError(f"invalid page cursor {text!r}")
        parsed = datetime.fromisoformat(stamp)
        return cls(parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed, event_id)


@dataclass
class EventRow:
    """What the events list shows of one event."""

    event_id: str
    timestamp: datetime
    model: str
    provider: str | None
    operation: str
    status: str
    error_kind: str | None
    error_type: str | None
    latency_ms: float | None
    time_to_first_token_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None
    labels: dict[str, str]
    stream: bool
    recorded_at: datetime | None
    end_timestamp: datetime | None
    scores: list[Score] = field(default_factory=list)

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.timestamp, self.event_id)


@dataclass
class EventPage:
    rows: list[EventRow]
    total: int
    has_older: bool
    has_newer: bool
    features: StoreFeatures
    watermark: datetime  # newest recorded_at seen (the live mode asks for events recorded after it)


@dataclass
class Lineage:
    """Relatives of one event: its parent, its children, and the events of its trace or correlation id (``trace``,
    oldest first, the event itself included)."""

    parent: EventRow | None = None
    children: list[EventRow] = field(default_factory=list)
    trace: list[EventRow] = field(default_factory=list)


def _row(row: Any) -> EventRow:
    m = row._mapping
    return EventRow(**{column.name: m[column.name] for column in _ROW_COLUMNS} | {"labels": m["labels"] or {}})


def _older_than(cursor: Cursor) -> Any:
    return or_(_c.timestamp < cursor.timestamp, and_(_c.timestamp == cursor.timestamp, _c.event_id < cursor.event_id))


def _newer_than(cursor: Cursor) -> Any:
    return or_(_c.timestamp > cursor.timestamp, and_(_c.timestamp == cursor.timestamp, _c.event_id > cursor.event_id))


class ViewerQueries:
    """Every read the viewer makes, over one read-only store."""

    def __init__(self, database_url: str) -> None:
        self.store = AsyncEventStore(database_url, read_only=True)
        self._features: tuple[float, StoreFeatures] | None = None
        self._choices: tuple[float, dict[str, list[str]]] | None = None

    async def close(self) -> None:
        await self.store.close()

    async def features(self) -> StoreFeatures:
        """What the schema offers, re-read every few seconds (a writer may migrate while the viewer runs)."""
        cached = self._features
        if cached is not None and time.monotonic() - cached[0] < _FEATURES_TTL_S:
            return cached[1]

        async def probe(engine: AsyncEngine) -> StoreFeatures:
            async with engine.connect() as connection:
                return await probe_features(connection)

        found = await self.store.run(probe)
        self._features = (time.monotonic(), found)
        return found

    async def _attach_scores(
        self, connection: AsyncConnection, rows: Sequence[EventRow], features: StoreFeatures
    ) -> None:
        if not features.scores or not rows:
            return
        found = await scores_for(connection, [row.event_id for row in rows])
        for row in rows:
            row.scores = found.get(row.event_id, [])

    async def _statement(self, connection: AsyncConnection, event_filter: EventFilter) -> Select[Any]:
        return await filtered(connection, select(*_ROW_COLUMNS), event_filter)

    async def page(
        self, event_filter: EventFilter, *, limit: int = 50, before: Cursor | None = None, after: Cursor | None = None
    ) -> EventPage:
        """One page of matching rows, newest first: the first page, or the one older than ``before`` / newer than
        ``after``."""
        features = await self.features()

        async def query(engine: AsyncEngine) -> EventPage:
            async with engine.connect() as connection:
                statement = await self._statement(connection, event_filter)
                if after is not None:
                    statement = statement.where(_newer_than(after)).order_by(_c.timestamp.asc(), _c.event_id.asc())
                else:
                    if before is not None:
                        statement = statement.where(_older_than(before))
                    statement = statement.order_by(_c.timestamp.desc(), _c.event_id.desc())
                rows = [_row(r) for r in await connection.execute(statement.limit(limit + 1))]
                more = len(rows) > limit
                rows = rows[:limit]
                if after is not None:
                    rows.reverse()
                count = await filtered(connection, select(func.count()).select_from(events), event_filter)
                total = int((await connection.execute(count)).scalar_one())
                newest = (await connection.execute(select(func.max(_c.recorded_at)))).scalar_one()
                await self._attach_scores(connection, rows, features)
            return EventPage(
                rows=rows,
                total=total,
                has_older=more if after is None else True,
                has_newer=(before is not None) if after is None else more,
                features=features,
                watermark=newest or datetime.now(timezone.utc),
            )

        return await self.store.run(query)

    async def recorded_after(self, event_filter: EventFilter, after: datetime, limit: int = 200) -> list[EventRow]:
        """Matching rows stored at or after ``after``, newest first (the live mode; the page drops ids it has)."""
        features = await self.features()

        async def query(engine: AsyncEngine) -> list[EventRow]:
            async with engine.connect() as connection:
                statement = (await self._statement(connection, event_filter)).where(_c.recorded_at >= after)
                statement = statement.order_by(_c.recorded_at.desc(), _c.timestamp.desc()).limit(limit)
                rows = [_row(r) for r in await connection.execute(statement)]
                await self._attach_scores(connection, rows, features)
            return rows

        return await self.store.run(query)

    async def event(self, event_id: str) -> tuple[LLMEvent, list[Score], Lineage] | None:
        """The event, its scores and its relatives; None when there is no such event."""
        features = await self.features()

        async def query(engine: AsyncEngine) -> tuple[LLMEvent, list[Score], Lineage] | None:
            async with engine.connect() as connection:
                found = (await connection.execute(select(events).where(_c.event_id == event_id))).first()
                if found is None:
                    return None
                event = row_to_event(found._mapping)
                lineage = await self._lineage(connection, event)
                relatives = [*lineage.children, *lineage.trace, *([lineage.parent] if lineage.parent else [])]
                await self._attach_scores(connection, relatives, features)
                own = (await scores_for(connection, [event_id])).get(event_id, []) if features.scores else []
            return event, own, lineage

        return await self.store.run(query)

    async def _lineage(self, connection: AsyncConnection, event: LLMEvent) -> Lineage:
        lineage = Lineage()
        window = and_(
            _c.timestamp >= event.timestamp - LINEAGE_WINDOW, _c.timestamp <= event.timestamp + LINEAGE_WINDOW
        )
        if event.parent_request_id:
            parent = (
                await connection.execute(select(*_ROW_COLUMNS).where(_c.event_id == event.parent_request_id))
            ).first()
            lineage.parent = _row(parent) if parent is not None else None
        relatives = [_c.parent_request_id == event.event_id]
        if event.trace_id:
            relatives.append(_c.trace_id == event.trace_id)
        if event.correlation_id:
            relatives.append(_c.correlation_id == event.correlation_id)
        statement = (
            select(*_ROW_COLUMNS, _c.trace_id, _c.correlation_id, _c.parent_request_id, _c.parent_span_id)
            .where(window, or_(*relatives))
            .order_by(_c.timestamp.asc(), _c.event_id.asc())
            .limit(500)
        )
        for found in await connection.execute(statement):
            row = _row(found)
            if found.parent_request_id == event.event_id or (
                event.span_id is not None and found.parent_span_id == event.span_id
            ):
                lineage.children.append(row)
            same_trace = event.trace_id is not None and found.trace_id == event.trace_id
            if same_trace or (event.correlation_id is not None and found.correlation_id == event.correlation_id):
                lineage.trace.append(row)
        return lineage

    async def choices(self) -> dict[str, list[str]]:
        """Values for the filter form's menus: models, providers, score names (re-read every few seconds: the
        providers and score names have no index, so each read scans)."""
        cached = self._choices
        if cached is not None and time.monotonic() - cached[0] < _FEATURES_TTL_S:
            return cached[1]
        found = await self._read_choices()
        self._choices = (time.monotonic(), found)
        return found

    async def _read_choices(self) -> dict[str, list[str]]:
        features = await self.features()

        async def query(engine: AsyncEngine) -> dict[str, list[str]]:
            async with engine.connect() as connection:
                models = (await connection.execute(select(_c.model).distinct().order_by(_c.model).limit(200))).scalars()
                providers = (
                    await connection.execute(select(_c.provider).distinct().order_by(_c.provider).limit(50))
                ).scalars()
                names = await score_names(connection) if features.scores else []
                return {
                    "models": [m for m in models if m],
                    "providers": [p for p in providers if p],
                    "score_names": names,
                }

        return await self.store.run(query)

    async def overview(self, event_filter: EventFilter) -> StoreStats:
        """The store's aggregates of the matching events with their timeline, computed by the database (without
        the per-model and per-label percentiles: the page charts only their tokens and cost)."""
        return await self.store.stats(event_filter=event_filter, timeline=True, group_percentiles=False)

    async def export(self, event_filter: EventFilter, batch: int = 500) -> AsyncIterator[tuple[LLMEvent, list[Score]]]:
        """Every matching event in full with its scores, newest first, fetched by keyset batches (no transaction
        held open between batches)."""
        features = await self.features()
        cursor: Cursor | None = None
        while True:

            async def query(
                engine: AsyncEngine, before: Cursor | None = cursor
            ) -> tuple[list[LLMEvent], dict[str, list[Score]]]:
                async with engine.connect() as connection:
                    statement = await filtered(connection, select(events), event_filter)
                    if before is not None:
                        statement = statement.where(_older_than(before))
                    statement = statement.order_by(_c.timestamp.desc(), _c.event_id.desc()).limit(batch)
                    found = [row_to_event(r._mapping) for r in await connection.execute(statement)]
                    scored = await scores_for(connection, [e.event_id for e in found]) if features.scores else {}
                    return found, scored

            found, scored = await self.store.run(query)
            for event in found:
                yield event, scored.get(event.event_id, [])
            if len(found) < batch:
                return
            cursor = Cursor(found[-1].timestamp, found[-1].event_id)
