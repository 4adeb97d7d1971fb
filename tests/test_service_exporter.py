"""LeanLLMServiceExporter against the real ingest service (SQLite file, PostgreSQL) and a fault-injecting server."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind

from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.exporters.service import (
    REASON_REJECTED_BY_SERVICE,
    REASON_TOO_LARGE,
    LeanLLMServiceExporter,
    parse_retry_after,
)
from leanllm_otel.ingest import IngestServer
from service_helpers import FaultServer, Received, Reply, free_port, llm_attributes, make_spans, read_rows

TOKEN = "lllm_test_9f8e7d6c5b4a_SECRET"


def fast_config(**overrides: Any) -> LeanLLMConfig:
    settings: dict[str, Any] = {
        "retry_max_attempts": 4,
        "retry_initial_backoff_ms": 10,
        "retry_total_budget_ms": 5_000,
        "export_timeout_ms": 2_000,
        "circuit_breaker_failure_threshold": 50,
    }
    settings.update(overrides)
    return LeanLLMConfig(**settings)


class DropLog:
    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    def __call__(self, count: int, reason: str) -> None:
        self.calls.append((count, reason))


@pytest.fixture
def ingest(sqlite_url: str) -> Iterator[IngestServer]:
    with IngestServer(sqlite_url, port=0, token=TOKEN) as server:
        yield server


@pytest.fixture
def fault() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def exporter_for(url: str, **kwargs: Any) -> LeanLLMServiceExporter:
    config = kwargs.pop("config", None) or fast_config()
    return LeanLLMServiceExporter(endpoint=url, api_key=TOKEN, config=config, **kwargs)


# --- against the real ingest service -------------------------------------------------------------------------


def test_spans_land_as_rows_in_sqlite_and_replays_are_idempotent(ingest: IngestServer, sqlite_url: str) -> None:
    drops = DropLog()
    exporter = exporter_for(ingest.url, on_dropped_events=drops)
    spans = make_spans(["ev-1", "ev-2", "ev-3"], error_ids=["ev-3"], non_llm=2)
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        assert exporter.export(spans) is SpanExportResult.SUCCESS  # replay: same event ids
    finally:
        exporter.shutdown()

    rows = read_rows(sqlite_url)
    assert set(rows) == {"ev-1", "ev-2", "ev-3"}
    assert rows["ev-1"]["model"] == "gpt-4o-mini"
    assert rows["ev-1"]["input_tokens"] == 11 and rows["ev-1"]["output_tokens"] == 7
    assert rows["ev-1"]["labels"] == {"feature": "tests"}
    assert rows["ev-1"]["parent_span_id"] is not None
    assert rows["ev-3"]["status"] == "error" and rows["ev-3"]["error_type"] == "RateLimitError"
    assert exporter.accepted_events_count == 6
    assert drops.calls == [] and exporter.dropped_events_count == 0


def test_batch_span_processor_pipeline_to_postgres(postgres_url: str) -> None:
    with IngestServer(postgres_url, port=0, token=TOKEN) as server:
        exporter = exporter_for(server.url)
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
        tracer = provider.get_tracer("tests")
        for index in range(5):
            with tracer.start_as_current_span(
                "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=llm_attributes(f"pg-{index}")
            ):
                pass
        with tracer.start_as_current_span("not an llm call"):
            pass
        assert provider.force_flush(10_000)
        provider.shutdown()
        rows = read_rows(postgres_url)
    assert set(rows) == {f"pg-{i}" for i in range(5)}
    assert all(row["provider"] == "openai" for row in rows.values())


def test_wrong_token_is_dropped_with_reason_and_not_retried(ingest: IngestServer) -> None:
    drops = DropLog()
    exporter = LeanLLMServiceExporter(
        endpoint=ingest.url, api_key="wrong", config=fast_config(), on_dropped_events=drops
    )
    try:
        assert exporter.export(make_spans(["x"])) is SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert drops.calls == [(1, "http_401: invalid bearer token")]
    assert exporter.requests_sent == 1


# --- fault injection ----------------------------------------------------------------------------------------


def test_5xx_is_retried_until_success(fault: FaultServer) -> None:
    fault._script = [Reply(503), Reply(500), Reply(502)]
    exporter = exporter_for(fault.url)
    try:
        assert exporter.export(make_spans(["a", "b"])) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    requests = fault.requests
    assert len(requests) == 4
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in requests)
    assert all(r.path == "/v1/events" for r in requests)
    assert [e["event_id"] for e in requests[-1].events] == ["a", "b"]
    assert exporter.dropped_events_count == 0


def test_429_retry_after_seconds_is_honoured(fault: FaultServer) -> None:
    fault._script = [Reply(429, headers={"Retry-After": "1"})]
    exporter = exporter_for(fault.url)  # backoff alone would be ~10 ms
    try:
        assert exporter.export(make_spans(["a"])) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    first, second = fault.requests
    assert second.at - first.at >= 0.9


def test_retry_after_http_date_is_parsed() -> None:
    now = datetime(2030, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=7), usegmt=True), now=now) == 7.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=7), usegmt=True), now=now) == 0.0
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_retry_after_longer_than_budget_drops_at_once(fault: FaultServer) -> None:
    fault._default = Reply(503, headers={"Retry-After": "120"})
    drops = DropLog()
    exporter = exporter_for(fault.url, config=fast_config(retry_total_budget_ms=1_000), on_dropped_events=drops)
    started = time.monotonic()
    try:
        assert exporter.export(make_spans(["a"])) is SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert time.monotonic() - started < 30  # it did not sleep the 120 s the server asked for
    assert len(fault.requests) == 1
    assert drops.calls == [(1, "retry_budget_exhausted")]


def test_retry_budget_is_respected(fault: FaultServer) -> None:
    fault._default = Reply(503)
    drops = DropLog()
    config = fast_config(retry_max_attempts=1000, retry_initial_backoff_ms=50, retry_total_budget_ms=600)
    exporter = exporter_for(fault.url, config=config, on_dropped_events=drops)
    started = time.monotonic()
    try:
        assert exporter.export(make_spans(["a", "b", "c"])) is SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
    elapsed = time.monotonic() - started
    assert 2 <= len(fault.requests) < 10  # 50, 100, 200 ms ... then the next sleep would overrun 600 ms
    assert elapsed < 0.6 + 5  # the budget plus generous slack for the requests themselves
    assert drops.calls == [(3, "retry_budget_exhausted")]
    assert exporter.drops.by_reason() == {"retry_budget_exhausted": 3}


def test_slow_server_times_out_and_is_retried(fault: FaultServer) -> None:
    fault._script = [Reply(delay=3.0)]
    exporter = exporter_for(fault.url, config=fast_config(export_timeout_ms=300))
    try:
        assert exporter.export(make_spans(["slow"])) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    deadline = time.monotonic() + 5
    while len(fault.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(fault.requests) == 2  # the timed-out attempt, then the retry


def test_connection_refused_is_retried_then_dropped() -> None:
    drops = DropLog()
    exporter = exporter_for(
        f"http://127.0.0.1:{free_port()}", config=fast_config(retry_max_attempts=3), on_dropped_events=drops
    )
    try:
        assert exporter.export(make_spans(["a", "b"])) is SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert exporter.requests_sent == 3
    assert drops.calls == [(2, "retry_budget_exhausted")]


def test_connection_dropped_without_answer_is_retried(fault: FaultServer) -> None:
    fault._script = [Reply(close=True)]
    exporter = exporter_for(fault.url)
    try:
        assert exporter.export(make_spans(["a"])) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert len(fault.requests) == 2


def test_circuit_breaker_opens_and_stops_calling(fault: FaultServer) -> None:
    fault._default = Reply(503)
    drops = DropLog()
    config = fast_config(
        retry_max_attempts=1, circuit_breaker_failure_threshold=2, circuit_breaker_recovery_timeout_ms=60_000
    )
    exporter = exporter_for(fault.url, config=config, on_dropped_events=drops)
    try:
        for index in range(5):
            assert exporter.export(make_spans([f"e{index}"])) is SpanExportResult.FAILURE
        assert exporter.breaker.state == "open"
    finally:
        exporter.shutdown()
    assert len(fault.requests) == 2
    assert [reason for _, reason in drops.calls] == ["retry_budget_exhausted"] * 2 + ["circuit_open"] * 3


def test_400_is_not_retried_and_dropped_with_the_server_reason(fault: FaultServer) -> None:
    fault._default = Reply(400, body=json.dumps({"error": "events[0].timestamp: invalid"}).encode())
    drops = DropLog()
    exporter = exporter_for(fault.url, on_dropped_events=drops)
    try:
        assert exporter.export(make_spans(["a", "b"])) is SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert len(fault.requests) == 1
    assert drops.calls == [(2, "http_400: events[0].timestamp: invalid")]
    assert exporter.breaker.state == "closed"  # the service answered: it is alive


def test_garbage_success_body_is_not_resent(fault: FaultServer) -> None:
    fault._default = Reply(200, body=b"\x00not json{{")
    exporter = exporter_for(fault.url)
    try:
        assert exporter.export(make_spans(["a"])) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert len(fault.requests) == 1
    assert exporter.dropped_events_count == 0


def test_service_side_drops_are_counted(fault: FaultServer) -> None:
    fault._default = Reply(200, body=b'{"accepted": 1, "dropped": 2}')
    drops = DropLog()
    exporter = exporter_for(fault.url, on_dropped_events=drops)
    try:
        assert exporter.export(make_spans(["a", "b", "c"])) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert drops.calls == [(2, REASON_REJECTED_BY_SERVICE)]
    assert exporter.accepted_events_count == 1


def test_large_batches_are_split_and_gzipped(fault: FaultServer) -> None:
    big = {"leanllm.error.message": "x" * 3_000}
    ids = [f"big-{i}" for i in range(40)]
    exporter = exporter_for(fault.url, max_request_bytes=20_000, max_events_per_request=8, gzip_threshold_bytes=4_000)
    try:
        assert exporter.export(make_spans(ids, extra=big)) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    requests = fault.requests
    assert len(requests) >= 7  # 40 events of ~3.5 kB in <= 20 kB requests
    assert all(len(r.body) <= 20_000 and len(r.events) <= 8 for r in requests)
    assert all(r.headers.get("content-encoding") == "gzip" and r.raw_size < len(r.body) for r in requests)
    assert sorted(e["event_id"] for r in requests for e in r.events) == sorted(ids)


def test_max_events_per_request(fault: FaultServer) -> None:
    exporter = exporter_for(fault.url, max_events_per_request=3)
    try:
        assert exporter.export(make_spans([f"e{i}" for i in range(7)])) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert [len(r.events) for r in fault.requests] == [3, 3, 1]
    assert "content-encoding" not in fault.requests[0].headers  # small bodies go uncompressed


def test_413_splits_the_batch_and_drops_a_single_oversized_event(fault: FaultServer) -> None:
    def responder(received: Received) -> Reply:
        if len(received.events) > 2 or any(e["event_id"] == "huge" for e in received.events):
            return Reply(413, body=b'{"error": "too large"}')
        return Reply()

    fault._responder = responder
    drops = DropLog()
    exporter = exporter_for(fault.url, on_dropped_events=drops)
    ids = [f"e{i}" for i in range(9)] + ["huge"]
    try:
        assert exporter.export(make_spans(ids)) is SpanExportResult.FAILURE  # "huge" could not be sent
    finally:
        exporter.shutdown()
    delivered = [
        e["event_id"] for r in fault.requests if len(r.events) <= 2 and "huge" not in str(r.events) for e in r.events
    ]
    assert sorted(delivered) == sorted(ids[:-1])
    assert drops.calls == [(1, REASON_TOO_LARGE)]


def test_non_llm_spans_are_ignored(fault: FaultServer) -> None:
    exporter = exporter_for(fault.url)
    try:
        assert exporter.export(make_spans([], non_llm=3)) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert fault.requests == []


def test_no_argument_construction_reads_the_environment(fault: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEANLLM_ENDPOINT", fault.url)
    monkeypatch.setenv("LEANLLM_API_KEY", "lllm_from_env")
    monkeypatch.delenv("LEANLLM_DATABASE_URL", raising=False)
    exporter = LeanLLMServiceExporter()
    try:
        assert exporter.endpoint == fault.url
        assert exporter.export(make_spans(["env"])) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert fault.requests[0].headers["authorization"] == "Bearer lllm_from_env"


def test_invalid_endpoint_is_rejected() -> None:
    with pytest.raises(ValueError, match="http"):
        LeanLLMServiceExporter(endpoint="ftp://example", api_key=TOKEN, config=fast_config())


def test_shutdown_interrupts_a_retrying_export(fault: FaultServer) -> None:
    fault._default = Reply(503)
    drops = DropLog()
    config = fast_config(retry_max_attempts=100, retry_initial_backoff_ms=20_000, retry_total_budget_ms=120_000)
    exporter = exporter_for(fault.url, config=config, on_dropped_events=drops)
    results: list[SpanExportResult] = []
    worker = threading.Thread(target=lambda: results.append(exporter.export(make_spans(["a"]))))
    worker.start()
    deadline = time.monotonic() + 10
    while not fault.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    exporter.shutdown()
    worker.join(10)
    assert not worker.is_alive()
    assert time.monotonic() - started < 5  # not the 20 s backoff
    assert results == [SpanExportResult.FAILURE]
    assert drops.calls == [(1, "shutdown")]
    assert exporter.export(make_spans(["late"])) is SpanExportResult.FAILURE
    assert exporter.drops.by_reason()["shutdown"] == 2


# --- the token never leaks -----------------------------------------------------------------------------------


def test_token_never_appears_in_logs_reasons_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # root: httpx and httpcore debug logging included
    drops = DropLog()
    echo = json.dumps({"error": f"bad token Bearer {TOKEN}"}).encode()
    scenarios = [
        Reply(503),
        Reply(429, headers={"Retry-After": "0"}),
        Reply(400, body=echo),
        Reply(401, body=echo),
        Reply(200, body=b"garbage " + TOKEN.encode()),
    ]
    with FaultServer(scenarios, default=Reply(500, body=echo)) as server:
        exporter = exporter_for(server.url, config=fast_config(retry_max_attempts=2), on_dropped_events=drops)
        for index in range(4):
            exporter.export(make_spans([f"t{index}"]))
        text_seen = repr(exporter) + str(exporter)
        exporter.shutdown()
        assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in server.requests)
    refused = exporter_for(
        f"http://127.0.0.1:{free_port()}", config=fast_config(retry_max_attempts=1), on_dropped_events=drops
    )
    refused.export(make_spans(["r"]))
    refused.shutdown()
    slow_server = FaultServer(default=Reply(delay=2.0)).start()
    try:
        slow = exporter_for(
            slow_server.url, config=fast_config(retry_max_attempts=1, export_timeout_ms=200), on_dropped_events=drops
        )
        slow.export(make_spans(["s"]))
        slow.shutdown()
    finally:
        slow_server.stop()

    assert any("httpcore" in record.name or "httpx" in record.name for record in caplog.records)
    reasons = " ".join(reason for _, reason in drops.calls)
    assert "http_400: bad token Bearer ***" in reasons
    for text in (caplog.text, reasons, text_seen, repr(exporter.drops.by_reason())):
        assert TOKEN not in text


def test_a_shared_drop_counter_sees_the_drops(fault: FaultServer) -> None:
    from leanllm_otel.exporters.delivery import DropCounter

    fault._default = Reply(422, body=b'{"reason": "schema mismatch"}')
    shared = DropCounter()
    exporter = exporter_for(fault.url, drops=shared)
    try:
        exporter.export(make_spans(["a", "b"]))
    finally:
        exporter.shutdown()
    assert exporter.drops is shared
    assert shared.by_reason() == {"http_422: schema mismatch": 2}
