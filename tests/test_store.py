"""Query API (sync and async) over a real SQLite file and the real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from leanllm_otel.event import LLMEvent
from leanllm_otel.store import AsyncEventStore, EventStore, StoreError
from loopback.events import make_event, write_events

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url"))


def write(url: str, events: list[LLMEvent]) -> None:
    write_events(url, events, NOW)


@pytest.fixture
def seeded(db_url: str) -> Iterator[tuple[str, dict[str, LLMEvent]]]:
    events = {
        "a": make_event(now=NOW, minutes_ago=50, model="gpt-4o", labels={"feature": "search"}, correlation_id="c1",
                        latency_ms=100, ttft_ms=20, cost=0.01),
        "b": make_event(now=NOW, minutes_ago=40, model="gpt-4o", labels={"feature": "search", "team": "x"},
                        correlation_id="c1", latency_ms=200, ttft_ms=40, error=True, cost=0.02),
        "c": make_event(now=NOW, minutes_ago=30, model="gpt-4o", labels={"feature": "chat"}, latency_ms=300,
                        cost=0.03),
        "d": make_event(now=NOW, minutes_ago=20, model="claude-3", labels={"feature": "chat"}, latency_ms=400,
                        cost=0.04, input_tokens=100, output_tokens=50),
        "e": make_event(now=NOW, minutes_ago=10, model="claude-3", correlation_id="c2", latency_ms=500, error=True,
                        cost=0.05),
    }
    write(db_url, list(events.values()))
    yield db_url, events


def ids(events: list[LLMEvent], by: dict[str, LLMEvent]) -> list[str]:
    names = {e.event_id: k for k, e in by.items()}
    return [names[e.event_id] for e in events]


def test_get_event(seeded: tuple[str, dict[str, LLMEvent]]) -> None:
    url, events = seeded
    with EventStore(url) as store:
        got = store.get_event(events["b"].event_id)
        assert got is not None and got.model_dump() == events["b"].model_dump()
        assert store.get_event("missing") is None


def test_list_filters_and_order(seeded: tuple[str, dict[str, LLMEvent]]) -> None:
    url, ev = seeded
    with EventStore(url) as store:
        assert ids(store.list_events(), ev) == ["e", "d", "c", "b", "a"]  # newest first
        assert ids(store.list_events(model="claude-3"), ev) == ["e", "d"]
        assert ids(store.list_events(correlation_id="c1"), ev) == ["b", "a"]
        assert ids(store.list_events(labels={"feature": "search"}), ev) == ["b", "a"]
        assert ids(store.list_events(labels={"feature": "search", "team": "x"}), ev) == ["b"]
        assert ids(store.list_events(labels={"feature": "nope"}), ev) == []
        assert ids(store.list_events(errors_only=True), ev) == ["e", "b"]
        assert ids(store.list_events(since=NOW - timedelta(minutes=35)), ev) == ["e", "d", "c"]
        assert ids(store.list_events(until=NOW - timedelta(minutes=30)), ev) == ["b", "a"]  # until is exclusive
        assert ids(store.list_events(limit=2), ev) == ["e", "d"]
        assert ids(store.list_events(limit=2, offset=2), ev) == ["c", "b"]
        assert ids(store.list_events(model="gpt-4o", errors_only=True, labels={"feature": "search"}), ev) == ["b"]
        assert store.count_events() == 5
        assert store.count_events(model="gpt-4o") == 3
        assert store.count_events(errors_only=True, since=NOW - timedelta(minutes=15)) == 1


def test_stats_per_model_and_label(seeded: tuple[str, dict[str, LLMEvent]]) -> None:
    url, _ = seeded
    with EventStore(url) as store:
        stats = store.stats()
    total = stats.total
    assert (total.calls, total.errors) == (5, 2)
    assert total.input_tokens == 10 * 4 + 100 and total.output_tokens == 5 * 4 + 50
    assert total.total_tokens == 15 * 4 + 150
    assert total.cost == pytest.approx(0.15)
    assert total.latency_p50_ms == pytest.approx(300)
    assert total.latency_p95_ms == pytest.approx(480)  # linear interpolation between 400 and 500
    assert total.ttft_p50_ms == pytest.approx(30)
    by_model = {g.key: g for g in stats.by_model}
    assert [g.key for g in stats.by_model] == ["gpt-4o", "claude-3"]  # most calls first
    assert (by_model["gpt-4o"].calls, by_model["gpt-4o"].errors) == (3, 1)
    assert by_model["claude-3"].latency_p50_ms == pytest.approx(450)
    assert by_model["claude-3"].error_rate == pytest.approx(0.5)
    by_label = {g.key: g for g in stats.by_label}
    assert set(by_label) == {"feature=search", "feature=chat", "team=x"}
    assert by_label["feature=search"].calls == 2 and by_label["feature=search"].cost == pytest.approx(0.03)
    assert by_label["feature=chat"].latency_p50_ms == pytest.approx(350)
    assert by_label["feature=chat"].ttft_p50_ms is None


def test_stats_respect_filters(seeded: tuple[str, dict[str, LLMEvent]]) -> None:
    url, _ = seeded
    with EventStore(url) as store:
        stats = store.stats(model="claude-3")
        assert stats.total.calls == 2 and [g.key for g in stats.by_model] == ["claude-3"]
        empty = store.stats(labels={"feature": "none"})
        assert empty.total.calls == 0 and empty.total.latency_p50_ms is None and empty.by_model == []


async def test_async_store_gives_the_same_answers(seeded: tuple[str, dict[str, LLMEvent]]) -> None:
    url, ev = seeded
    async with AsyncEventStore(url) as store:
        assert ids(await store.list_events(labels={"feature": "chat"}), ev) == ["d", "c"]
        assert await store.count_events(correlation_id="c2") == 1
        got = await store.get_event(ev["a"].event_id)
        assert got is not None and got.labels == {"feature": "search"}
        assert (await store.stats()).total.calls == 5
        recorded = await store.recorded_since(NOW - timedelta(seconds=1))
        assert len(recorded) == 5 and all(stamp == NOW for stamp, _ in recorded)


def test_unreachable_database_is_a_store_error() -> None:
    with EventStore("postgresql://postgres@127.0.0.1:1/none", timeout_s=10) as store, pytest.raises(StoreError) as info:
        store.list_events()
    assert "127.0.0.1:1" in str(info.value) and "\n" not in str(info.value)


def test_missing_schema_and_missing_file(postgres_url: str, sqlite_url: str) -> None:
    with EventStore(postgres_url) as store, pytest.raises(StoreError, match="leanllm-otel migrate"):
        store.count_events()
    with EventStore(sqlite_url) as store, pytest.raises(StoreError, match="no database file"):
        store.count_events()
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()  # reading did not create the file


def test_password_never_in_errors(postgres_server: object) -> None:
    url = "postgresql://postgres:hunter2secret@127.0.0.1:1/db"
    with EventStore(url, timeout_s=10) as store, pytest.raises(StoreError) as info:
        store.count_events()
    assert "hunter2secret" not in str(info.value)
