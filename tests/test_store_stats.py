"""``stats()`` computed by the database equals a plain Python computation over the same events, on a real SQLite
file and the real PostgreSQL server: totals, per model, per label, per time bucket, with filters.

The seeded events are generated from a fixed seed and cover the awkward cases: NULL latency / TTFT / tokens /
cost, a missing ``total_tokens`` (input + output counts), an empty model name, repeated values (ties), one-event
groups, labels with ``=`` / quotes / non-ASCII text, events exactly on and just before a bucket boundary.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone

import pytest

from leanllm_otel.event import LLMEvent
from leanllm_otel.event_filter import EventFilter
from leanllm_otel.store import EventStore, GroupStats, StoreStats
from leanllm_otel.store.stats import bucket_size, floor_time
from loopback.events import write_events

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-haiku", "")
LABEL_VALUES = {
    "feature": ("search", "chat", "agent"),
    "tenant": ("t1", "t2", "t=3", 'q"uote'),
    "région": ("zürich", "東京"),
}


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url"))


def _events(count: int = 400) -> list[LLMEvent]:
    rng = random.Random(17)
    found = []
    for _ in range(count):
        labels = {key: rng.choice(values) for key, values in LABEL_VALUES.items() if rng.random() < 0.6}
        input_tokens = rng.choice([None, 0, 7, 120, 3000])
        output_tokens = rng.choice([None, 3, 45, 800])
        latency = rng.choice([float(rng.randrange(50, 90)), rng.uniform(1, 5000)])  # whole numbers repeat: ties
        found.append(
            LLMEvent(
                event_id=str(uuid.uuid4()),
                timestamp=NOW - timedelta(seconds=rng.uniform(0, 3 * 3600), microseconds=rng.randrange(1000)),
                model=rng.choice(MODELS),
                labels=labels,
                status="error" if rng.random() < 0.15 else "ok",
                latency_ms=None if rng.random() < 0.1 else latency,
                time_to_first_token_ms=rng.uniform(5, 400) if rng.random() < 0.4 else None,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                total_tokens=None if rng.random() < 0.3 else (input_tokens or 0) + (output_tokens or 0) + 1,
                cost=None if rng.random() < 0.1 else round(rng.uniform(0, 0.05), 6),
            )
        )  # fmt: skip
    # On a bucket boundary and a microsecond before it; alone in its model and label.
    boundary = NOW - timedelta(hours=1)
    found.append(
        LLMEvent(event_id="on-boundary", timestamp=boundary, model="solo", latency_ms=42.0, labels={"one": "x"})
    )
    found.append(LLMEvent(event_id="before-boundary", timestamp=boundary - timedelta(microseconds=1), model="gpt-4o"))
    return found


@pytest.fixture
def store(db_url: str) -> tuple[str, list[LLMEvent]]:
    events = _events()
    write_events(db_url, events, NOW)
    return db_url, events


# --- the reference: every rule written out plainly over the event objects ---------------------------------


def _percentile(values: Iterable[float | None], q: float) -> float | None:
    ordered = sorted(v for v in values if v is not None)
    if not ordered:
        return None
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _group(key: str, events: list[LLMEvent]) -> GroupStats:
    return GroupStats(
        key=key,
        calls=len(events),
        errors=sum(e.status == "error" for e in events),
        input_tokens=sum(e.input_tokens or 0 for e in events),
        output_tokens=sum(e.output_tokens or 0 for e in events),
        total_tokens=sum(
            e.total_tokens if e.total_tokens is not None else (e.input_tokens or 0) + (e.output_tokens or 0)
            for e in events
        ),
        cost=round(sum(e.cost or 0.0 for e in events), 10),
        latency_p50_ms=_percentile((e.latency_ms for e in events), 0.5),
        latency_p95_ms=_percentile((e.latency_ms for e in events), 0.95),
        ttft_p50_ms=_percentile((e.time_to_first_token_ms for e in events), 0.5),
    )


def _by(events: list[LLMEvent], keys: Callable[[LLMEvent], Iterable[str]]) -> list[GroupStats]:
    groups: dict[str, list[LLMEvent]] = {}
    for event in events:
        for key in keys(event):
            groups.setdefault(key, []).append(event)
    return sorted((_group(k, v) for k, v in groups.items()), key=lambda g: (-g.calls, g.key))


def _reference(events: list[LLMEvent]) -> StoreStats:
    return StoreStats(
        total=_group("all", events),
        by_model=_by(events, lambda e: [e.model or "(unknown)"]),
        by_label=_by(events, lambda e: [f"{k}={v}" for k, v in e.labels.items()]),
    )


def _reference_buckets(events: list[LLMEvent]) -> list[GroupStats]:
    first, last = min(e.timestamp for e in events), max(e.timestamp for e in events)
    size = bucket_size(first, last)
    start = floor_time(first, size)
    count = int((last - start) // size) + 1
    members: list[list[LLMEvent]] = [[] for _ in range(count)]
    for event in events:
        members[int((event.timestamp - start) // size)].append(event)
    return [_group((start + size * i).isoformat(), members[i]) for i in range(count)]


def _assert_same(got: GroupStats, want: GroupStats, percentiles: bool = True) -> None:
    exact = ("key", "calls", "errors", "input_tokens", "output_tokens", "total_tokens")
    assert {f: getattr(got, f) for f in exact} == {f: getattr(want, f) for f in exact}
    assert got.cost == pytest.approx(want.cost, rel=1e-9, abs=1e-9), got.key
    for name in ("latency_p50_ms", "latency_p95_ms", "ttft_p50_ms"):
        expected = getattr(want, name) if percentiles else None
        assert getattr(got, name) == expected, (got.key, name)  # the same arithmetic: equal to the bit


def _assert_stats(got: StoreStats, want: StoreStats, group_percentiles: bool = True) -> None:
    _assert_same(got.total, want.total)
    assert [g.key for g in got.by_model] == [g.key for g in want.by_model]
    assert [g.key for g in got.by_label] == [g.key for g in want.by_label]
    for pair in zip(got.by_model + got.by_label, want.by_model + want.by_label, strict=True):
        _assert_same(*pair, percentiles=group_percentiles)


# --- the tests ---------------------------------------------------------------------------------------------


def test_stats_equal_a_plain_python_computation(store: tuple[str, list[LLMEvent]]) -> None:
    url, events = store
    with EventStore(url) as db:
        got = db.stats(timeline=True)
    want = _reference(events)
    assert got.total.calls == len(events) and len(got.by_label) == 10  # every label value occurs
    _assert_stats(got, want)
    assert got.first == min(e.timestamp for e in events) and got.last == max(e.timestamp for e in events)
    assert got.timeline is not None
    expected = _reference_buckets(events)
    assert len(got.timeline.buckets) == len(expected) > 1
    for pair in zip(got.timeline.buckets, expected, strict=True):
        _assert_same(*pair)
    assert [s.isoformat() for s in got.timeline.starts()] == [g.key for g in expected]


@pytest.mark.parametrize(
    "event_filter, keep",
    [
        (EventFilter(model="gpt-4o"), lambda e: e.model == "gpt-4o"),
        (EventFilter(labels={"tenant": 'q"uote'}), lambda e: e.labels.get("tenant") == 'q"uote'),
        (
            EventFilter(since=NOW - timedelta(minutes=90), errors_only=True),
            lambda e: e.timestamp >= NOW - timedelta(minutes=90) and e.status == "error",
        ),
        (EventFilter(min_latency_ms=1000), lambda e: e.latency_ms is not None and e.latency_ms >= 1000),
    ],
    ids=["model", "label-with-quote", "since-errors", "min-latency"],
)
def test_stats_of_a_filter_equal_python_over_the_matching_events(
    store: tuple[str, list[LLMEvent]], event_filter: EventFilter, keep: Callable[[LLMEvent], bool]
) -> None:
    url, events = store
    matching = [e for e in events if keep(e)]
    assert 0 < len(matching) < len(events)
    with EventStore(url) as db:
        got = db.stats(event_filter=event_filter, timeline=True)
    _assert_stats(got, _reference(matching))
    assert got.timeline is not None
    for pair in zip(got.timeline.buckets, _reference_buckets(matching), strict=True):
        _assert_same(*pair)


def test_without_group_percentiles_the_sums_are_the_same(store: tuple[str, list[LLMEvent]]) -> None:
    url, events = store
    with EventStore(url) as db:
        got = db.stats(group_percentiles=False)
        assert got.timeline is None
        empty = db.stats(model="no-such-model", timeline=True)
    _assert_stats(got, _reference(events), group_percentiles=False)
    assert empty.total == GroupStats("all") and empty.by_label == [] and empty.timeline is None


def test_one_event_and_ties(db_url: str) -> None:
    single = LLMEvent(event_id="only", timestamp=NOW, model="m", latency_ms=7.5, time_to_first_token_ms=2.0)
    ties = [
        LLMEvent(event_id=f"tie-{i}", timestamp=NOW - timedelta(seconds=i), model="t", latency_ms=10.0 * (i // 3))
        for i in range(7)
    ]
    write_events(db_url, [single, *ties], NOW)
    with EventStore(db_url) as db:
        got = db.stats(timeline=True)
    models = {g.key: g for g in got.by_model}
    assert (models["m"].latency_p50_ms, models["m"].latency_p95_ms, models["m"].ttft_p50_ms) == (7.5, 7.5, 2.0)
    # t: 0, 0, 0, 10, 10, 10, 20 -> p50 at rank 3 = 10; p95 at 5.7 -> 10 + (20 - 10) * 0.7
    assert models["t"].latency_p50_ms == 10.0
    assert models["t"].latency_p95_ms == pytest.approx(17.0)
    _assert_stats(got, _reference([single, *ties]))
