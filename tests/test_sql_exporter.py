"""SQLSpanExporter against a real SQLite file and the real PostgreSQL server (same tests, parametrized)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import threading
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult

from leanllm_otel import semconv as sc
from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.event import span_to_event
from leanllm_otel.exporters.batching import LeanLLMBatchSpanProcessor
from leanllm_otel.exporters.sql import SQLSpanExporter
from leanllm_otel.store import EventStore
from loopback.events import fast_config, make_llm_span, make_plain_span
from support import PostgresServer


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url"))


def _count(url: str) -> int:
    with EventStore(url) as store:
        return store.count_events()


# --- writing -----------------------------------------------------------------------------------------------


def test_llm_spans_become_events_and_other_spans_are_ignored(db_url: str) -> None:
    exporter = SQLSpanExporter(config=fast_config(db_url))
    try:
        spans = [
            make_llm_span(labels={"feature": "search", "team": "a.b"}, correlation_id="corr-1", content=True),
            make_llm_span(error="RateLimitError", model="claude-3"),
            make_llm_span(ttft_ms=45.5),
        ]
        assert exporter.export([make_plain_span(), *spans, make_plain_span("db")]) is SpanExportResult.SUCCESS
        with EventStore(db_url) as store:
            assert store.count_events() == 3
            for span in spans:
                expected = span_to_event(span)
                stored = store.get_event(expected.event_id)
                assert stored is not None
                # The stored event is exactly the one mapping's event: no field lost or altered.
                assert stored.model_dump() == expected.model_dump()
            first = store.get_event(span_to_event(spans[0]).event_id)
            assert first is not None
            assert first.labels == {"feature": "search", "team": "a.b"}
            assert first.parameters == {"temperature": 0.2, "max_tokens": 64}
            assert first.tool_calls == [{"id": "call_1", "name": "lookup", "arguments": {"q": 1}}]
            assert first.input_messages[0]["parts"][0]["content"] == "héllo [PII:EMAIL]"
            assert first.findings == {"EMAIL": 1}
            assert first.timestamp.tzinfo is not None
        assert exporter.drops.total == 0
    finally:
        exporter.shutdown()


def test_writes_are_idempotent_on_event_id(db_url: str) -> None:
    exporter = SQLSpanExporter(config=fast_config(db_url))
    try:
        spans = [make_llm_span() for _ in range(20)]
        assert exporter.export(spans[:15]) is SpanExportResult.SUCCESS
        assert exporter.export(spans) is SpanExportResult.SUCCESS  # 15 repeats + 5 new
        assert exporter.export(spans[:3] + spans[:3]) is SpanExportResult.SUCCESS  # duplicates inside a batch
        assert _count(db_url) == 20
    finally:
        exporter.shutdown()


def test_through_a_tracer_provider_and_batch_processor(db_url: str) -> None:
    config = fast_config(db_url, batch_size=50, flush_interval_ms=60_000)
    exporter = SQLSpanExporter(config=config)
    processor = LeanLLMBatchSpanProcessor(exporter, config)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("app")
    for i in range(120):
        with tracer.start_as_current_span("chat gpt-4o-mini") as span:
            span.set_attribute(sc.LEANLLM_REQUEST_ID, f"evt-{i}")
            span.set_attribute(sc.GEN_AI_REQUEST_MODEL, "gpt-4o-mini")
            with tracer.start_as_current_span("POST /chat/completions"):
                pass  # a non-LLM child span (e.g. httpx)
    assert provider.force_flush()
    assert _count(db_url) == 120
    provider.shutdown()
    assert processor.drops.total == 0


def test_concurrent_exports_from_several_threads(db_url: str) -> None:
    exporter = SQLSpanExporter(config=fast_config(db_url))
    batches = [[make_llm_span() for _ in range(50)] for _ in range(8)]
    results: list[SpanExportResult] = []
    threads = [threading.Thread(target=lambda b=b: results.append(exporter.export(b))) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    exporter.shutdown()
    assert results == [SpanExportResult.SUCCESS] * 8
    assert _count(db_url) == 400


# --- construction ------------------------------------------------------------------------------------------


def test_no_argument_construction_reads_the_environment(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEANLLM_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("LEANLLM_EXPORT_TIMEOUT_MS", "4321")
    exporter = SQLSpanExporter()
    try:
        assert exporter.config.database_url == sqlite_url
        assert exporter.config.export_timeout_ms == 4321
        assert exporter.export([make_llm_span()]) is SpanExportResult.SUCCESS
        assert Path(sqlite_url.removeprefix("sqlite:///")).exists()
    finally:
        exporter.shutdown()


def test_database_url_and_api_key_together_is_an_error_naming_both(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEANLLM_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("LEANLLM_API_KEY", "lllm_secret")
    with pytest.raises(ValueError) as info:
        SQLSpanExporter()
    assert "LEANLLM_DATABASE_URL" in str(info.value) and "LEANLLM_API_KEY" in str(info.value)
    assert "lllm_secret" not in str(info.value)


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("mysql://u@h/db", "unsupported scheme"),
        ("sqlite://events.db", "three slashes"),
        ("nonsense", "not a database URL"),
    ],
)
def test_malformed_url_is_a_clear_error_at_start(url: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        SQLSpanExporter(url)


def test_missing_url_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEANLLM_DATABASE_URL", raising=False)
    monkeypatch.delenv("LEANLLM_API_KEY", raising=False)
    with pytest.raises(ValueError, match="LEANLLM_DATABASE_URL"):
        SQLSpanExporter()


def test_sqlite_parent_directories_are_created_and_wal_is_on(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "events.db"
    exporter = SQLSpanExporter(config=fast_config(f"sqlite:///{path}"))
    try:
        assert exporter.export([make_llm_span()]) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_entry_point_builds_the_exporter_with_no_arguments(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    found = [ep for ep in entry_points(group="opentelemetry_traces_exporter") if ep.name == "leanllm"]
    if not found:
        pytest.skip("pyproject entry point not registered yet (lead adds it)")
    monkeypatch.setenv("LEANLLM_DATABASE_URL", sqlite_url)
    exporter = found[0].load()()
    try:
        # The lead's entry point may front the SQL exporter with a chooser (SQL or service, by LEANLLM_*).
        assert isinstance(getattr(exporter, "inner", exporter), SQLSpanExporter)
        assert exporter.export([make_llm_span()]) is SpanExportResult.SUCCESS
        assert _count(sqlite_url) == 1
    finally:
        exporter.shutdown()


# --- faults ------------------------------------------------------------------------------------------------


def test_postgres_down_at_start_then_up(postgres_server: PostgresServer, postgres_url: str) -> None:
    postgres_server.stop()
    dropped: list[tuple[int, str]] = []
    started = time.monotonic()
    exporter = SQLSpanExporter(
        config=fast_config(postgres_url, retry_total_budget_ms=500),
        on_dropped_events=lambda c, r: dropped.append((c, r)),
    )
    assert time.monotonic() - started < 1.0  # construction does not wait for the database
    try:
        assert exporter.export([make_llm_span() for _ in range(4)]) is SpanExportResult.FAILURE
        assert dropped == [(4, "retry_budget_exhausted")]
        postgres_server.start()
        later = [make_llm_span() for _ in range(3)]
        assert exporter.export(later) is SpanExportResult.SUCCESS  # migrates, then writes
        with EventStore(postgres_url) as store:
            assert {e.event_id for e in store.list_events()} == {span_to_event(s).event_id for s in later}
        assert exporter.drops.total == 4
    finally:
        postgres_server.start()
        exporter.shutdown()


def test_postgres_down_mid_run_then_back(postgres_server: PostgresServer, postgres_url: str) -> None:
    dropped: list[tuple[int, str]] = []
    exporter = SQLSpanExporter(
        config=fast_config(postgres_url, retry_max_attempts=50, retry_initial_backoff_ms=50,
                           retry_total_budget_ms=600),
        on_dropped_events=lambda c, r: dropped.append((c, r)),
    )
    try:
        assert exporter.export([make_llm_span() for _ in range(5)]) is SpanExportResult.SUCCESS
        postgres_server.stop()
        # Over budget while the server is down: dropped and counted.
        assert exporter.export([make_llm_span() for _ in range(6)]) is SpanExportResult.FAILURE
        assert dropped == [(6, "retry_budget_exhausted")]
        # Down now, back within the (longer) budget of the next batch: written after it returns.
        patient = SQLSpanExporter(config=fast_config(postgres_url, retry_max_attempts=200,
                                                     retry_initial_backoff_ms=50, retry_total_budget_ms=30_000))
        restart = threading.Timer(1.0, postgres_server.start)
        restart.start()
        try:
            assert patient.export([make_llm_span() for _ in range(7)]) is SpanExportResult.SUCCESS
        finally:
            restart.join(60)
            patient.shutdown()
        # The first exporter's pooled connections died with the server: it reconnects by itself.
        assert exporter.export([make_llm_span() for _ in range(2)]) is SpanExportResult.SUCCESS
        assert _count(postgres_url) == 5 + 7 + 2
        assert exporter.drops.total == 6
    finally:
        postgres_server.start()
        exporter.shutdown()


def test_sqlite_table_locked_then_released(sqlite_url: str) -> None:
    exporter = SQLSpanExporter(
        config=fast_config(sqlite_url, retry_max_attempts=50, retry_total_budget_ms=10_000),
        sqlite_busy_timeout_ms=50,
    )
    try:
        assert exporter.export([make_llm_span()]) is SpanExportResult.SUCCESS
        locker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False)
        locker.execute("BEGIN EXCLUSIVE")
        release = threading.Timer(0.5, locker.execute, args=("COMMIT",))
        release.start()
        started = time.monotonic()
        assert exporter.export([make_llm_span() for _ in range(3)]) is SpanExportResult.SUCCESS
        assert time.monotonic() - started >= 0.4  # it really waited out the lock
        release.join()
        locker.close()
        assert _count(sqlite_url) == 4
        assert exporter.drops.total == 0
    finally:
        exporter.shutdown()


def _make_read_only(path: Path) -> bool:
    if os.geteuid() != 0:
        path.chmod(0o444)
        return True
    chattr = shutil.which("chattr")
    return bool(chattr) and subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode == 0


def _make_writable(path: Path) -> None:
    if os.geteuid() != 0:
        path.chmod(0o644)
    else:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)


def test_sqlite_read_only_file_drops_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    url = f"sqlite:///{path}"
    exporter = SQLSpanExporter(config=fast_config(url, retry_total_budget_ms=300))
    exporter.export([make_llm_span()])
    exporter.shutdown()  # release the file so the WAL is checkpointed
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    if not _make_read_only(path):
        pytest.skip("cannot make a file read-only here (root without chattr)")
    exporter = SQLSpanExporter(config=fast_config(url, retry_total_budget_ms=300))
    try:
        result = exporter.export([make_llm_span() for _ in range(3)])  # must not raise
        assert result is SpanExportResult.FAILURE
        assert exporter.drops.total == 3
        _make_writable(path)
        assert exporter.export([make_llm_span() for _ in range(2)]) is SpanExportResult.SUCCESS
        assert _count(url) == 3
    finally:
        _make_writable(path)
        exporter.shutdown()


def test_export_never_raises_on_odd_spans(sqlite_url: str) -> None:
    exporter = SQLSpanExporter(config=fast_config(sqlite_url))
    try:
        odd = make_llm_span(
            extra={sc.GEN_AI_INPUT_MESSAGES: "{not json", sc.LEANLLM_SECURITY_FINDINGS: "[1,2]",
                   sc.GEN_AI_USAGE_INPUT_TOKENS: "many", sc.SERVER_PORT: 2**40}
        )
        assert exporter.export([odd]) in (SpanExportResult.SUCCESS, SpanExportResult.FAILURE)
        assert exporter.export([]) is SpanExportResult.SUCCESS
        with EventStore(sqlite_url) as store:
            stored = store.get_event(span_to_event(odd).event_id)
        assert stored is not None and stored.input_messages == {"_unparsed": "{not json"}
    finally:
        exporter.shutdown()
    assert exporter.export([make_llm_span()]) is SpanExportResult.FAILURE  # after shutdown: counted drop
    assert exporter.drops.by_reason() == {"already_shutdown": 1}


def test_shutdown_interrupts_retries_against_a_dead_database(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    exporter = SQLSpanExporter(config=fast_config(postgres_url, retry_max_attempts=100,
                                                  retry_initial_backoff_ms=2000, retry_total_budget_ms=120_000))
    processor = LeanLLMBatchSpanProcessor(exporter, fast_config(postgres_url, shutdown_timeout_ms=500,
                                                                flush_interval_ms=50))
    postgres_server.stop()
    try:
        processor.on_end(make_llm_span())
        time.sleep(0.5)
        started = time.monotonic()
        processor.shutdown()
        assert time.monotonic() - started < 2.0
    finally:
        postgres_server.start()


def test_forked_child_writes_its_own_events(sqlite_url: str) -> None:
    exporter = SQLSpanExporter(config=fast_config(sqlite_url))
    try:
        assert exporter.export([make_llm_span(labels={"who": "parent"})]) is SpanExportResult.SUCCESS
        pid = os.fork()
        if pid == 0:  # child: its own loop thread and connections
            code = 1
            try:
                ok = exporter.export([make_llm_span(labels={"who": "child"}) for _ in range(3)])
                code = 0 if ok is SpanExportResult.SUCCESS else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        assert exporter.export([make_llm_span(labels={"who": "parent"})]) is SpanExportResult.SUCCESS
        with EventStore(sqlite_url) as store:
            assert store.count_events(labels={"who": "child"}) == 3
            assert store.count_events(labels={"who": "parent"}) == 2
    finally:
        exporter.shutdown()


def test_config_argument_with_url_override(sqlite_url: str) -> None:
    exporter = SQLSpanExporter(sqlite_url, config=LeanLLMConfig(auto_migrate=True, export_timeout_ms=3000))
    try:
        assert exporter.config.database_url == sqlite_url and exporter.config.export_timeout_ms == 3000
        assert exporter.export([make_llm_span()]) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()


def test_shutdown_stops_a_sqlite_write_waiting_for_another_writers_lock(sqlite_url: str) -> None:
    # A 60 s busy timeout: the write waits for the lock in slices, so shutdown ends the wait and counts the batch.
    exporter = SQLSpanExporter(config=fast_config(sqlite_url, retry_max_attempts=5), sqlite_busy_timeout_ms=60_000)
    assert exporter.export([make_llm_span()]) is SpanExportResult.SUCCESS
    locker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")
    results: list[SpanExportResult] = []
    writing = threading.Thread(target=lambda: results.append(exporter.export([make_llm_span() for _ in range(4)])))
    try:
        writing.start()
        time.sleep(0.3)
        assert writing.is_alive()  # waiting for the lock
        exporter.shutdown(timeout_millis=5_000)
        writing.join(10)
        assert not writing.is_alive()
        assert results == [SpanExportResult.FAILURE]
        assert exporter.drops.by_reason() == {"shutdown": 4}
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        writing.join(60)
    assert _count(sqlite_url) == 1


def test_a_sqlite_batch_is_written_on_the_exporting_thread_in_one_transaction(sqlite_url: str) -> None:
    exporter = SQLSpanExporter(config=fast_config(sqlite_url))
    try:
        exporter.migrate(10)
        threads: set[int] = set()
        statements: list[str] = []
        writer = exporter._writer._sqlite
        assert writer is not None
        connection = writer._connected()

        def trace(statement: str) -> None:
            threads.add(threading.get_ident())
            words = " ".join(statement.split()[:3]).upper()
            if words.startswith(("INSERT", "BEGIN", "COMMIT", "ROLLBACK")):
                statements.append(words)

        connection.set_trace_callback(trace)
        assert exporter.export([make_llm_span() for _ in range(256)]) is SpanExportResult.SUCCESS
        assert threads == {threading.get_ident()}
        # A power-of-two batch is one statement, its own transaction: no BEGIN / COMMIT round trips.
        # (SQLite's trace reports the INSERT once more per row: the content-search trigger runs per row.)
        assert set(statements) == {"INSERT INTO LEANLLM_EVENTS"}
        statements.clear()
        # 300 rows are statements of 256 + 32 + 8 + 4 rows, in one transaction.
        assert exporter.export([make_llm_span() for _ in range(300)]) is SpanExportResult.SUCCESS
        assert statements[0] == "BEGIN IMMEDIATE" and statements[-1] == "COMMIT"
        assert set(statements[1:-1]) == {"INSERT INTO LEANLLM_EVENTS"}
        assert threads == {threading.get_ident()}
        assert _count(sqlite_url) == 556
    finally:
        exporter.shutdown()


def test_postgres_batch_sends_constant_columns_once_and_stores_every_rows_values(postgres_url: str) -> None:
    from leanllm_otel.store.pg_write import UnnestInsert

    exporter = SQLSpanExporter(config=fast_config(postgres_url))
    try:
        spans = [make_llm_span(labels={"team": "a"}, input_tokens=10 + i, latency_ms=100.0 + i) for i in range(6)]
        spans.append(make_llm_span(labels={"team": "b"}, input_tokens=10, latency_ms=100.0))
        rows = [dict(span_to_event(span).to_row(), recorded_at=None) for span in spans]
        columns, arrays = exporter._writer.prepared().arrays(rows)
        varying, _, constants, values = UnnestInsert.split_constants(columns, arrays)
        assert {"event_id", "input_tokens", "latency_ms", "labels", "trace_id"} <= set(varying)
        assert {"model", "operation", "provider"} <= set(constants) and "event_id" not in constants
        assert values[constants.index("model")] == "gpt-4o-mini"
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        with EventStore(postgres_url) as store:
            stored = {event.event_id: event for event in store.list_events(limit=100)}
        for span in spans:
            expected = span_to_event(span)
            got = stored[expected.event_id]
            assert (got.input_tokens, got.latency_ms, got.labels, got.model, got.operation) == (
                expected.input_tokens, expected.latency_ms, expected.labels, expected.model, expected.operation)
        assert exporter.export([make_llm_span(input_tokens=99)]) is SpanExportResult.SUCCESS  # one row: all arrays
        assert _count(postgres_url) == 8
    finally:
        exporter.shutdown()


def test_a_sqlite_batch_longer_than_one_statement_is_one_transaction(sqlite_url: str) -> None:
    exporter = SQLSpanExporter(config=fast_config(sqlite_url))
    try:
        exporter.migrate(10)
        writer = exporter._writer._sqlite
        assert writer is not None
        statements: list[str] = []
        writer._connected().set_trace_callback(lambda sql: statements.append(sql.split(None, 1)[0].upper()))
        spans = [make_llm_span() for _ in range(2_500)]  # more rows than one statement's parameter limit allows
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        ours = [s for s in statements if s in ("BEGIN", "COMMIT", "ROLLBACK")]
        assert ours == ["BEGIN", "COMMIT"]
        assert _count(sqlite_url) == 2_500
    finally:
        exporter.shutdown()


def test_a_child_forked_while_the_parent_writes_to_sqlite_writes_its_own_events(sqlite_url: str) -> None:
    exporter = SQLSpanExporter(config=fast_config(sqlite_url, export_timeout_ms=2_000))
    try:
        assert exporter.export([make_llm_span(labels={"who": "parent"})]) is SpanExportResult.SUCCESS
        writer = exporter._writer._sqlite
        assert writer is not None
        with writer._turn:  # a parent thread is in the middle of a write when the fork happens
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    ok = exporter.export([make_llm_span(labels={"who": "child"}) for _ in range(2)])
                    code = 0 if ok is SpanExportResult.SUCCESS else 2
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        with EventStore(sqlite_url) as store:
            assert store.count_events(labels={"who": "child"}) == 2
    finally:
        exporter.shutdown()
