"""The store's aggregates, computed by the database: calls, errors, tokens, cost, latency p50/p95 and TTFT p50,
overall, per model, per label (``name=value``) and per time bucket (:func:`compute_stats`).

Only aggregated rows reach Python. The first and last start time come from the timestamp index; sums from one
``GROUP BY`` per model (and time bucket, for a timeline), rolled up into the total and the timeline here, and one
per label. Percentiles interpolate linearly between the
two closest ranks (``v[lo] + (v[lo + 1] - v[lo]) * frac`` at position ``(n - 1) * q``, PostgreSQL's
``percentile_cont``): PostgreSQL computes them with ``percentile_cont``; SQLite, which has no such function,
numbers each group's values with ``row_number()`` and returns only the rows at the ranks the group's count calls
for (two per percentile), interpolated here with the same arithmetic. SQL lives in
:mod:`leanllm_otel.store.stats_sql`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select
from sqlalchemy.ext.asyncio import AsyncConnection

from leanllm_otel.event_filter import EventFilter, probe_features
from leanllm_otel.store import stats_sql as sql

__all__ = ["GroupStats", "StoreStats", "Timeline", "bucket_size", "compute_stats"]

# Time bucket sizes, smallest first: a timeline takes the first giving at most MAX_BUCKETS buckets.
BUCKET_SIZES = tuple(timedelta(seconds=n) for n in (1, 5, 15, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400))
MAX_BUCKETS = 60


@dataclass
class GroupStats:
    """Aggregates for one group (a model, a ``label=value``, a time bucket, or everything)."""

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
class Timeline:
    """The matching events per time bucket: ``buckets[i]`` covers ``[start + i * size, start + (i + 1) * size)``;
    every bucket from the first event's to the last event's is there (empty ones with ``calls == 0``)."""

    start: datetime
    size: timedelta
    buckets: list[GroupStats]

    def starts(self) -> list[datetime]:
        return [self.start + self.size * i for i in range(len(self.buckets))]


@dataclass
class StoreStats:
    """``stats()`` result: everything, then per model and per label (``name=value``), most calls first; the
    oldest and newest matching start times; the timeline when asked for and any event matched."""

    total: GroupStats
    by_model: list[GroupStats]
    by_label: list[GroupStats]
    first: datetime | None = None
    last: datetime | None = None
    timeline: Timeline | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "total": self.total.to_dict(),
            "by_model": [g.to_dict() for g in self.by_model],
            "by_label": [g.to_dict() for g in self.by_label],
        }
        if self.timeline is not None:
            found["timeline"] = {
                "start": self.timeline.start.isoformat(),
                "bucket_seconds": self.timeline.size.total_seconds(),
                "buckets": [g.to_dict() for g in self.timeline.buckets],
            }
        return found


def bucket_size(first: datetime, last: datetime) -> timedelta:
    """The smallest of :data:`BUCKET_SIZES` that cuts ``first``..``last`` into at most :data:`MAX_BUCKETS`."""
    span = last - first
    for size in BUCKET_SIZES:
        if span / size <= MAX_BUCKETS:
            return size
    return BUCKET_SIZES[-1]


def floor_time(value: datetime, size: timedelta) -> datetime:
    """``value`` rounded down to a multiple of ``size`` since the Unix epoch (UTC)."""
    return sql.EPOCH + size * ((value - sql.EPOCH) // size)


@dataclass
class _Sums:
    """One group's sums as read (several rows of one group add up): the additive fields of ``group``, and how many
    latency and TTFT values there are."""

    group: GroupStats
    n_latency_ms: int
    n_time_to_first_token_ms: int

    @classmethod
    def of(cls, row: Any) -> _Sums:
        m = row._mapping  # PostgreSQL sums integers as numeric: every count back to int
        counts = {name: int(m[name] or 0) for name in sql.ADDITIVE if name != "cost"}
        return cls(
            GroupStats("", **counts, cost=float(m["cost"] or 0.0)),
            int(m["n_latency_ms"]), int(m["n_time_to_first_token_ms"]),
        )  # fmt: skip

    def add(self, other: _Sums) -> _Sums:
        for name in sql.ADDITIVE:
            setattr(self.group, name, getattr(self.group, name) + getattr(other.group, name))
        self.n_latency_ms += other.n_latency_ms
        self.n_time_to_first_token_ms += other.n_time_to_first_token_ms
        return self

    def stats(self, key: str) -> GroupStats:
        return dataclasses.replace(self.group, key=key, cost=round(self.group.cost, 10))


# {group key as the database returns it: (the group's stats, its sums)}
_Groups = dict[Any, tuple[GroupStats, _Sums]]


def _groups(pairs: Iterable[tuple[Any, _Sums]], name: Callable[[Any], str] = str) -> _Groups:
    """The sums of each key added up (several rows may share one), with the group's stats named ``name(key)``."""
    merged: dict[Any, _Sums] = {}
    for key, found in pairs:
        merged[key] = (
            merged[key].add(found)
            if key in merged
            else dataclasses.replace(found, group=dataclasses.replace(found.group))
        )
    return {key: (found.stats(name(key)), found) for key, found in merged.items()}


def _ordered(groups: _Groups) -> list[GroupStats]:
    return sorted((stats for stats, _ in groups.values()), key=lambda g: (-g.calls, g.key))


class _Reader:
    """The statements of one :func:`compute_stats` call, on one connection."""

    def __init__(self, connection: AsyncConnection, conditions: Sequence[ColumnElement[bool]]) -> None:
        self.connection = connection
        self.dialect = connection.dialect.name
        self.conditions = conditions

    async def rows(self, statement: Select[Any]) -> list[Any]:
        return list(await self.connection.execute(statement))

    async def percentiles(self, grouping: sql.Grouping, groups: _Groups) -> None:
        """Fill the percentile fields of ``groups``."""
        if not groups:
            return
        if self.dialect == "postgresql":
            for row in await self.rows(sql.postgres_percentiles(grouping, self.conditions)):
                if row.g in groups:
                    for name, quantiles, fields in sql.PERCENTILES:
                        for q, target in zip(quantiles, fields, strict=True):
                            value = row._mapping[f"{name}:{q}"]
                            setattr(groups[row.g][0], target, None if value is None else float(value))
            return
        for name, quantiles, fields in sql.PERCENTILES:
            wanted = {
                key: [sql.ranks(count, q) for q in quantiles]
                for key, (_, sums) in groups.items()
                if (count := getattr(sums, f"n_{name}"))
            }
            if not wanted:
                continue
            targets = sorted({(key, rank) for key, found in wanted.items() for lo, hi, _ in found for rank in (lo, hi)})
            values = {
                (row.g, int(row.r)): float(row.v)
                for row in await self.rows(sql.sqlite_ranked(grouping, self.conditions, name, targets))
            }
            for key, found in wanted.items():
                for (lo, hi, weight), target in zip(found, fields, strict=True):
                    if (key, lo) in values and (key, hi) in values:  # absent only if rows were deleted meanwhile
                        setattr(groups[key][0], target, sql.interpolate(values[key, lo], values[key, hi], weight))


async def compute_stats(
    connection: AsyncConnection, event_filter: EventFilter, *, timeline: bool = False, group_percentiles: bool = True
) -> StoreStats:
    """The aggregates of the events matching ``event_filter``; per time bucket too when ``timeline``. Latency and
    TTFT percentiles for the total and the timeline, and per model and label when ``group_percentiles``."""
    features = await probe_features(connection) if event_filter.needs_features else None
    reader = _Reader(connection, event_filter.conditions(features))
    if reader.dialect == "postgresql":
        await connection.execute(sql.POSTGRES_NO_JIT)
    extent = (await reader.rows(sql.extent(reader.conditions)))[0]
    first, last = extent.first, extent.last
    if first is None:
        return StoreStats(total=GroupStats("all"), by_model=[], by_label=[])
    keys: list[ColumnElement[Any]] = [sql.model_key()]
    span: tuple[datetime, timedelta, int] | None = None
    if timeline:
        size = bucket_size(first, last)
        start = floor_time(first, size)
        span = (start, size, int((last - start) // size) + 1)
        keys.append(sql.bucket_key(reader.dialect, start, size))
    rows = [(row, _Sums.of(row)) for row in await reader.rows(sql.sums(keys, reader.conditions))]
    total = _groups((("", sums) for _, sums in rows), name=lambda _: "all")
    models = _groups((row.k0, sums) for row, sums in rows)
    labels = _groups(
        (row.k0, _Sums.of(row)) for row in await reader.rows(sql.label_sums(reader.dialect, reader.conditions))
    )
    await reader.percentiles(sql.Grouping(), total)
    if group_percentiles:
        await reader.percentiles(sql.Grouping(sql.model_key()), models)
        await reader.percentiles(sql.label_grouping(reader.dialect), labels)
    everything = total[""][0] if total else GroupStats("all")  # empty only if the rows were deleted meanwhile
    stats = StoreStats(everything, _ordered(models), _ordered(labels), first, last)
    if span is not None:
        stats.timeline = await _timeline(reader, rows, *span)
    return stats


async def _timeline(
    reader: _Reader, rows: Sequence[tuple[Any, _Sums]], start: datetime, size: timedelta, count: int
) -> Timeline:
    # Rows written after the extent was read may fall outside 0..count-1: left out.
    found = _groups(((int(row.k1), sums) for row, sums in rows if 0 <= int(row.k1) < count), name=lambda _: "")
    await reader.percentiles(sql.Grouping(sql.bucket_key(reader.dialect, start, size)), found)
    buckets = []
    for i in range(count):
        group = found[i][0] if i in found else GroupStats("")
        group.key = (start + size * i).isoformat()
        buckets.append(group)
    return Timeline(start=start, size=size, buckets=buckets)
