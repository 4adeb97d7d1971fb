"""The SQL store's prepared INSERT (multi-row statements, literal NULLs, JSON text) on real SQLite and PostgreSQL,
and how the exporter counts each span exactly once."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.dialects.sqlite import aiosqlite

from leanllm_otel import semconv as sc
from leanllm_otel.event import span_to_event
from leanllm_otel.exporters.sql import SQLSpanExporter
from leanllm_otel.store import EventStore
from leanllm_otel.store.insert import PreparedInsert, json_text, statement_sizes
from leanllm_otel.store.schema import events
from loopback.events import fast_config, make_event, make_llm_span


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url"))


def _spans_of_every_shape(count: int) -> list[Any]:
    shapes = [
        lambda i: make_llm_span(labels={"feature": f"f{i % 3}"}, correlation_id=f"c{i}"),
        lambda i: make_llm_span(error="RateLimitError", model="claude-3"),
        lambda i: make_llm_span(ttft_ms=10.0 + i, content=True),
        lambda i: make_llm_span(extra={sc.LEANLLM_USER_ID: "u1", sc.LEANLLM_TAG_PREFIX + "tier": "gold"}),
    ]
    return [shapes[i % len(shapes)](i) for i in range(count)]


# --- statements -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", [aiosqlite.dialect(), asyncpg.dialect()], ids=["sqlite", "postgresql"])
def test_rows_share_statements_and_unset_columns_are_not_bound(dialect: Any) -> None:
    prepared = PreparedInsert(dialect)
    columns = len(events.c)
    assert prepared.max_rows_per_statement > 100  # derived from SQLAlchemy's statement and checked against it
    rows = [{"event_id": f"e{i}", "timestamp": datetime.now(timezone.utc), "model": "m"} for i in range(512)]
    statements = prepared.statements(rows)
    assert len(statements) == 1  # sparse rows: a full batch fits one statement
    bound = len(statements[0][1])
    assert bound < 512 * columns // 2  # most columns are NULL for these rows: written as NULL, not bound
    now = datetime.now(timezone.utc)
    full = prepared.statements([SQLSpanExporter.event_to_row(make_event(), now) for _ in range(900)])
    sizes = statement_sizes(900, prepared.max_rows_per_statement)  # every column bound: the limit splits them
    assert len(full) == len(sizes) > 1
    assert [len(parameters) for _, parameters in full] == [columns * size for size in sizes]


@given(st.integers(min_value=0, max_value=5000), st.integers(min_value=1, max_value=1200))
def test_statement_sizes_are_powers_of_two_within_the_limit_that_add_up(count: int, limit: int) -> None:
    sizes = statement_sizes(count, limit)
    assert sum(sizes) == count
    assert all(size & (size - 1) == 0 and size <= limit for size in sizes)
    assert sizes == sorted(sizes, reverse=True)
    largest = 1 << (limit.bit_length() - 1)
    assert len(sizes) <= count // largest + largest.bit_length()


def test_writes_of_every_length_share_a_few_statement_texts_on_real_sqlite(sqlite_url: str) -> None:
    # A statement text the driver has seen is reused prepared; one per batch length was parsed anew every time.
    exporter = SQLSpanExporter(config=fast_config(sqlite_url))
    prepared = exporter._prepared()
    texts: set[str] = set()
    statements = prepared.statements

    def recording(rows: Any) -> list[tuple[str, tuple[Any, ...]]]:
        written = statements(rows)
        texts.update(sql for sql, _ in written)
        return written

    prepared.statements = recording  # type: ignore[method-assign]
    try:
        written = 0
        for length in range(1, 65):
            assert exporter.export([make_llm_span() for _ in range(length)]).name == "SUCCESS"
            written += length
        assert len(texts) == 7  # 1, 2, 4, ..., 64 rows: 64 batch lengths, 7 texts
        with EventStore(sqlite_url) as store:
            assert store.count_events() == written
    finally:
        exporter.shutdown()


def test_json_text_is_what_json_dumps_writes_for_the_common_shapes() -> None:
    samples: list[Any] = [
        {}, [], {"feature": "search", "é\n\"": "x\u2028"}, ["stop", 'x"y'], {"temperature": 0.2, "max_tokens": 256},
        {"stream": True, "n": None}, [1e308, -1e308, 5e-324, 0.1, 10**30], {"x": float("nan")}, [float("inf")],
        {"nested": {"a": [1, "b"]}}, {1: "int key"}, [True, 2, 3.5],
    ]
    for value in samples:
        assert json_text(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert json_text(None) is None


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text())


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.dictionaries(st.text(), _scalars, max_size=6), st.lists(_scalars, max_size=6)))
def test_json_text_matches_json_dumps_for_any_flat_value(value: Any) -> None:
    assert json_text(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --- round trips on the real databases ------------------------------------------------------------------------


def test_a_large_mixed_batch_round_trips_exactly(db_url: str) -> None:
    exporter = SQLSpanExporter(config=fast_config(db_url))
    spans = _spans_of_every_shape(700)  # more than one statement, rows of different shapes in each
    try:
        assert exporter.export(spans).name == "SUCCESS"
        assert exporter.exported_count == 700
        with EventStore(db_url) as store:
            assert store.count_events() == 700
            for span in spans[:8] + spans[-4:]:
                expected = span_to_event(span)
                stored = store.get_event(expected.event_id)
                assert stored is not None and stored.model_dump() == expected.model_dump()
    finally:
        exporter.shutdown()


def test_one_row_per_statement_when_the_multi_row_form_cannot_be_derived(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PreparedInsert, "_split_statement", lambda self: None)
    exporter = SQLSpanExporter(config=fast_config(db_url))
    spans = _spans_of_every_shape(5)
    try:
        assert exporter._prepared().max_rows_per_statement == 1
        assert exporter.export(spans).name == "SUCCESS"
        with EventStore(db_url) as store:
            for span in spans:
                expected = span_to_event(span)
                stored = store.get_event(expected.event_id)
                assert stored is not None and stored.model_dump() == expected.model_dump()
    finally:
        exporter.shutdown()


# --- counting -------------------------------------------------------------------------------------------------


def _unmappable_span() -> Any:
    # finish reasons must be a string array: the mapping rejects a number
    return make_llm_span(extra={sc.GEN_AI_RESPONSE_FINISH_REASONS: 3})


def test_an_unmappable_span_is_counted_once_and_the_rest_is_written(sqlite_url: str) -> None:
    exporter = SQLSpanExporter(config=fast_config(sqlite_url))
    try:
        assert exporter.export([make_llm_span(), _unmappable_span(), make_llm_span()]).name == "SUCCESS"
        assert exporter.exported_count == 2
        assert exporter.drops.by_reason() == {"mapping_error": 1}
        with EventStore(sqlite_url) as store:
            assert store.count_events() == 2
    finally:
        exporter.shutdown()


def test_a_dropped_batch_counts_each_of_its_spans_once() -> None:
    unreachable = "postgresql://postgres@127.0.0.1:1/nowhere"  # nothing listens on port 1
    exporter = SQLSpanExporter(config=fast_config(unreachable, retry_max_attempts=1, export_timeout_ms=2000))
    try:
        assert exporter.export([make_llm_span(), _unmappable_span(), make_llm_span()]).name == "FAILURE"
        assert sum(exporter.drops.by_reason().values()) == 3  # not 3 + 1 for the unmappable one
        assert "mapping_error" not in exporter.drops.by_reason()
    finally:
        exporter.shutdown()


def test_a_row_the_database_refuses_costs_only_that_row(db_url: str) -> None:
    exporter = SQLSpanExporter(config=fast_config(db_url))
    too_wide = make_llm_span(input_tokens=2**70)  # no 64-bit integer column takes it
    good = [make_llm_span(), make_llm_span(labels={"feature": "x"})]
    try:
        assert exporter.export([good[0], too_wide, good[1]]).name == "SUCCESS"
        assert exporter.exported_count == 2
        assert sum(exporter.drops.by_reason().values()) == 1
        with EventStore(db_url) as store:
            assert store.count_events() == 2
            assert store.get_event(span_to_event(too_wide).event_id) is None
    finally:
        exporter.shutdown()


# --- PostgreSQL's unnest write --------------------------------------------------------------------------------


def test_column_wise_values_are_the_multi_row_statement_values() -> None:
    prepared = PreparedInsert(asyncpg.dialect())
    recorded_at = datetime.now(timezone.utc)
    rows = [SQLSpanExporter.event_to_row(span_to_event(s), recorded_at) for s in _spans_of_every_shape(8)]
    rows = [{k: v for k, v in row.items() if k in events.c} for row in rows]
    columns, arrays = prepared.arrays(rows)
    assert columns == [column.key for column in events.c if column.key in columns]  # table order
    [(_, parameters)] = prepared.statements(rows)
    width = len(columns)
    per_row = [parameters[i * width : (i + 1) * width] for i in range(len(rows))]
    assert [list(values) for values in zip(*per_row, strict=True)] == arrays


def test_postgres_write_survives_pooled_connections_killed_by_the_server(postgres_url: str) -> None:
    import asyncio

    import asyncpg as driver

    exporter = SQLSpanExporter(config=fast_config(postgres_url, retry_max_attempts=1))
    try:
        assert exporter.export([make_llm_span() for _ in range(3)]).name == "SUCCESS"

        async def terminate_others() -> int:
            connection = await driver.connect(postgres_url)
            try:
                killed = await connection.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                return len(killed)
            finally:
                await connection.close()

        assert asyncio.run(terminate_others()) >= 1  # the exporter's pooled connection
        # No pre-ping and a single attempt: the write itself notices the dead connection and uses a new one.
        assert exporter.export([make_llm_span() for _ in range(4)]).name == "SUCCESS", exporter.drops.by_reason()
        assert exporter.drops.total == 0
        with EventStore(postgres_url) as store:
            assert store.count_events() == 7
    finally:
        exporter.shutdown()


@settings(max_examples=500, deadline=None)
@given(
    st.datetimes(timezones=st.one_of(st.none(), st.just(timezone.utc), st.timezones())),
)
def test_sqlite_datetime_text_is_isoformat_of_the_utc_value(value: datetime) -> None:
    # The store's SQLite text form (what SQLAlchemy's DATETIME reads back) through the per-second cache: the same
    # text isoformat writes, for any instant and zone, the last microsecond of a second included.
    from leanllm_otel.store.insert import _sqlite_datetime

    try:
        utc = value if value.tzinfo is None else value.astimezone(timezone.utc)
    except OverflowError:  # the zone moves it outside datetime's range
        return
    expected = utc.isoformat(" ", "microseconds")
    assert _sqlite_datetime(value) == (expected if value.tzinfo is None else expected[:-6])
    assert _sqlite_datetime(value) == _sqlite_datetime(value)  # from the cache, the second time
