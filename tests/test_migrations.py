"""Alembic migrations of the event store, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from leanllm_otel.event import LLMEvent
from leanllm_otel.store import EventStore
from leanllm_otel.store import engine as db
from leanllm_otel.store.schema import (
    CONTENT_SEARCH_INDEX,
    CONTENT_SEARCH_TABLE,
    SCORES_TABLE,
    STORAGE_ONLY_COLUMNS,
    events,
    scores,
)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url"))


def _run(coro_fn, url: str):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        engine = db.create_engine(db.async_database_url(url))
        try:
            return await coro_fn(engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _schema(engine: AsyncEngine):  # type: ignore[no-untyped-def]
    async def get():  # type: ignore[no-untyped-def]
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda c: (
                    inspect(c).get_table_names(),
                    {col["name"] for col in inspect(c).get_columns("leanllm_events")},
                    {ix["name"] for ix in inspect(c).get_indexes("leanllm_events")},
                    inspect(c).get_pk_constraint("leanllm_events")["constrained_columns"],
                )
            )

    return get()


def test_every_event_field_has_a_column() -> None:
    assert set(LLMEvent.model_fields) == set(events.c.keys()) - STORAGE_ONLY_COLUMNS


def test_head_schema_matches_schema_module(db_url: str) -> None:
    async def check(engine: AsyncEngine) -> None:
        await db.upgrade(engine)
        tables, columns, indexes, pk = await _schema(engine)
        assert "leanllm_alembic_version" in tables and "alembic_version" not in tables
        assert columns == set(events.c.keys())
        # The content-search index exists on PostgreSQL only; SQLite searches through an FTS5 table instead.
        sqlite = engine.dialect.name == "sqlite"
        assert indexes == {ix.name for ix in events.indexes} - ({CONTENT_SEARCH_INDEX} if sqlite else set())
        assert SCORES_TABLE in tables and (CONTENT_SEARCH_TABLE in tables) == sqlite
        async with engine.connect() as connection:
            score_columns, score_indexes = await connection.run_sync(
                lambda c: (
                    {col["name"] for col in inspect(c).get_columns(SCORES_TABLE)},
                    {ix["name"] for ix in inspect(c).get_indexes(SCORES_TABLE)},
                )
            )
        assert score_columns == set(scores.c.keys())
        assert score_indexes == {ix.name for ix in scores.indexes}
        assert {"ix_leanllm_events_timestamp", "ix_leanllm_events_correlation_id",
                "ix_leanllm_events_model_timestamp", "ix_leanllm_events_status_timestamp"} <= indexes
        assert pk == ["event_id"]
        assert await db.current_revision(engine) == db.head_revision()
        await db.upgrade(engine)  # idempotent
        assert await db.current_revision(engine) == db.head_revision()

    _run(check, db_url)


def test_upgrade_from_first_revision_keeps_rows(db_url: str) -> None:
    async def first(engine: AsyncEngine) -> None:
        await db.upgrade(engine, "0001_initial")
        _, columns, _, _ = await _schema(engine)
        assert "findings" not in columns and "recorded_at" not in columns
        async with engine.begin() as connection:
            for i in range(3):
                await connection.execute(
                    text(
                        "INSERT INTO leanllm_events (event_id, timestamp, operation, model, stream, status, "
                        "content_captured, labels, cost, latency_ms) VALUES (:id, :ts, 'chat', :model, :f, :status, "
                        ":f, :labels, :cost, 250.0)"
                    ),
                    {"id": f"old-{i}", "ts": datetime(2024, 5, 1, 12, i, tzinfo=timezone.utc), "model": "gpt-4",
                     "f": False, "status": "error" if i == 2 else "ok", "labels": '{"feature": "legacy"}',
                     "cost": 0.5},
                )
        assert await db.current_revision(engine) == "0001_initial"
        await db.upgrade(engine)
        assert await db.current_revision(engine) == db.head_revision()

    _run(first, db_url)
    with EventStore(db_url) as store:
        stored = store.list_events()
        assert [e.event_id for e in stored] == ["old-2", "old-1", "old-0"]
        old = store.get_event("old-0")
        assert old is not None
        assert old.labels == {"feature": "legacy"} and old.cost == 0.5 and old.latency_ms == 250.0
        assert old.timestamp == datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
        assert old.findings == {} and old.blocked is False  # columns added by 0002 read as defaults
        assert store.count_events(errors_only=True, labels={"feature": "legacy"}) == 1


def test_alembic_env_works_from_an_async_url_without_a_connection(sqlite_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", db.async_database_url(sqlite_url))
    command.upgrade(config, "head")
    assert _run(db.current_revision, sqlite_url) == db.head_revision()


def test_concurrent_migrations_from_several_processes(db_url: str) -> None:
    code = (
        "import sys; from leanllm_otel.store import EventStore\n"
        "with EventStore(sys.argv[1]) as s: print(s.migrate())\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, db_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outputs]
    assert {out.strip() for out, _ in outputs} == {db.head_revision()}
