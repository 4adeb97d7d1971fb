"""EventFilter on SQLite and PostgreSQL: content search (index and scan), scores, user/session, thresholds."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.event_filter import EventFilter, ScoreFilter, parse_time
from leanllm_otel.feedback import ScoreRecorder
from leanllm_otel.store import EventStore
from leanllm_otel.store import engine as db
from loopback.events import make_llm_span
from loopback.viewer_data import SEARCH_WORD, seed, write_spans


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url"))


def _ids(url: str, event_filter: EventFilter) -> set[str]:
    with EventStore(url) as store:
        return {e.event_id for e in store.list_events(limit=1000, event_filter=event_filter)}


def test_content_search_finds_words_in_stored_content(db_url: str) -> None:
    ids = seed(db_url, count=5)
    assert _ids(db_url, EventFilter(text=SEARCH_WORD)) == {ids["searchable"]}
    assert _ids(db_url, EventFilter(text=f"{SEARCH_WORD.upper()} tell")) == {ids["searchable"]}
    assert _ids(db_url, EventFilter(text=f"{SEARCH_WORD} absentword")) == set()
    assert _ids(db_url, EventFilter(text="Perth")) == {ids["searchable"], ids["hostile"]}  # tool call arguments
    # Query syntax characters are words, not syntax, on every backend.
    assert _ids(db_url, EventFilter(text='" OR * NEAR( -')) == set()
    with EventStore(db_url) as store:
        assert store.count_events(event_filter=EventFilter(text=SEARCH_WORD), model="gpt-4o-mini") == 1


def test_sqlite_store_without_the_index_scans_content(sqlite_url: str) -> None:
    async def migrate_to(revision: str) -> None:
        engine = db.create_engine(db.async_database_url(sqlite_url))
        try:
            await db.upgrade(engine, revision)
        finally:
            await engine.dispose()

    asyncio.run(migrate_to("0006_scores"))  # a store written before revision 0007
    ids = seed(sqlite_url, count=3)
    assert _ids(sqlite_url, EventFilter(text=SEARCH_WORD)) == {ids["searchable"]}
    assert _ids(sqlite_url, EventFilter(text="100%")) == set()  # LIKE wildcards are escaped
    # Migrating later indexes what is already there, and the trigger indexes what comes next.
    asyncio.run(migrate_to("head"))
    write_spans(sqlite_url, [make_llm_span(event_id="late", extra={
        "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "a late wombat"}]}]'})])
    assert _ids(sqlite_url, EventFilter(text=SEARCH_WORD)) == {ids["searchable"]}
    assert _ids(sqlite_url, EventFilter(text="wombat")) == {"late"}


def test_postgres_search_uses_the_gin_index(postgres_url: str) -> None:
    seed(postgres_url, count=3)
    from leanllm_otel.event_filter import StoreFeatures, content_search
    from leanllm_otel.store.schema import events

    condition = content_search(SEARCH_WORD, StoreFeatures("postgresql", True, True))
    assert condition is not None
    from sqlalchemy import select
    from sqlalchemy.dialects import postgresql

    sql = str(select(events.c.event_id).where(condition).compile(dialect=postgresql.dialect(),
                                                                  compile_kwargs={"literal_binds": True}))

    async def plan() -> str:
        engine = db.create_engine(db.async_database_url(postgres_url))
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SET enable_seqscan = off"))
                rows = await connection.execute(text("EXPLAIN " + sql))
                return "\n".join(r[0] for r in rows)
        finally:
            await engine.dispose()

    assert "ix_leanllm_events_content_search" in asyncio.run(plan())


def test_user_session_provider_and_thresholds(db_url: str) -> None:
    special = set(seed(db_url, count=12).values())  # these take 123 ms and cost 0.00042
    assert _ids(db_url, EventFilter(user_id="user-1")) == {f"ev-{i:05d}" for i in (1, 5, 9)}
    assert _ids(db_url, EventFilter(session_id="session-3")) == {"ev-00003", "ev-00010"}
    assert _ids(db_url, EventFilter(min_latency_ms=109.0)) == {"ev-00009", "ev-00010", "ev-00011"} | special
    assert _ids(db_url, EventFilter(min_cost=0.004, user_id="user-0")) == {"ev-00004"}
    assert _ids(db_url, EventFilter(provider="no-such-provider")) == set()


def test_score_filters(db_url: str) -> None:
    ids = seed(db_url, count=2)
    recorder = ScoreRecorder(LeanLLMConfig(database_url=db_url), emitter=None)
    try:
        recorder.record(ids["searchable"], "user_feedback", False)
        recorder.record(ids["error"], "user_feedback", True)
        recorder.record(ids["error"], "relevance", 0.9)
        recorder.record(ids["parent"], "topic", "billing")
    finally:
        recorder.close()
    assert _ids(db_url, EventFilter(score=ScoreFilter.parse("user_feedback"))) == {ids["searchable"], ids["error"]}
    assert _ids(db_url, EventFilter(score=ScoreFilter.parse("user_feedback=false"))) == {ids["searchable"]}
    assert _ids(db_url, EventFilter(score=ScoreFilter.parse("relevance >= 0.5"))) == {ids["error"]}
    assert _ids(db_url, EventFilter(score=ScoreFilter.parse("relevance<0.5"))) == set()
    assert _ids(db_url, EventFilter(score=ScoreFilter.parse("topic=billing"))) == {ids["parent"]}
    assert _ids(db_url, EventFilter(score=ScoreFilter.parse("topic!=billing"))) == set()


@pytest.mark.parametrize("spec", ["", "=x", "a=", "a!b", "a<cheap", "a>=nan"])
def test_bad_score_filters_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="score filter"):
        ScoreFilter.parse(spec)


def test_parse_time_forms() -> None:
    assert parse_time("2025-01-31T12:00:00Z") == datetime(2025, 1, 31, 12, tzinfo=timezone.utc)
    assert parse_time("2025-01-31") == datetime(2025, 1, 31, tzinfo=timezone.utc)
    age = datetime.now(timezone.utc) - parse_time("2h")
    assert 7190 < age.total_seconds() < 7300
    for bad in ("yesterday", "-2h", "h", "2x"):
        with pytest.raises(ValueError, match="invalid time"):
            parse_time(bad)
