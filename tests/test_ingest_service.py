"""The ingest service (``leanllm-otel serve``) on loopback, writing into a real SQLite file / PostgreSQL."""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from leanllm_otel import semconv as sc
from leanllm_otel.event import span_to_event
from leanllm_otel.ingest import IngestServer
from service_helpers import count_rows, free_port, llm_attributes, make_spans, read_rows

TOKEN = "ingest-token-5e4d3c2b1a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROTOBUF = {**AUTH, "Content-Type": "application/x-protobuf"}
OTLP_JSON = {**AUTH, "Content-Type": "application/json"}


@pytest.fixture
def server(sqlite_url: str) -> Iterator[IngestServer]:
    with IngestServer(sqlite_url, port=0, token=TOKEN, max_body_bytes=256 * 1024) as running:
        yield running


@pytest.fixture
def client(server: IngestServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


def event_payload(event_id: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "timestamp": "2030-01-01T00:00:00Z", "model": "gpt-4o-mini", **fields}


def otlp_body(event_ids: list[str], **kwargs: Any) -> bytes:
    return encode_spans(make_spans(event_ids, **kwargs)).SerializeToString()


def assert_still_serving(client: httpx.Client, sqlite_url: str) -> None:
    marker = f"alive-{time.monotonic_ns()}"
    answer = client.post("/v1/events", json={"events": [event_payload(marker)]}, headers=AUTH)
    assert answer.status_code == 200 and answer.json() == {"accepted": 1, "dropped": 0}
    assert marker in read_rows(sqlite_url)


def test_healthz_answers_status_ok_without_a_token(client: httpx.Client) -> None:
    """exporters/README.md: "``GET /healthz`` answers ``{"status": "ok"}``" (a probe carries no bearer token)."""
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


# --- LeanLLM protocol ----------------------------------------------------------------------------------------


def test_events_are_stored_and_replays_are_idempotent(client: httpx.Client, sqlite_url: str) -> None:
    events = [event_payload("a", input_tokens=3, labels={"team": "x"}), event_payload("b", status="error")]
    first = client.post("/v1/events", json={"events": events}, headers=AUTH)
    again = client.post("/v1/events", json={"events": events + events}, headers=AUTH)
    assert first.json() == {"accepted": 2, "dropped": 0}
    assert again.status_code == 200 and again.json()["accepted"] == 4
    rows = read_rows(sqlite_url)
    assert set(rows) == {"a", "b"}
    assert rows["a"]["input_tokens"] == 3 and rows["a"]["labels"] == {"team": "x"}
    assert rows["b"]["status"] == "error"


def test_invalid_events_are_dropped_and_counted(client: httpx.Client, sqlite_url: str) -> None:
    events = [event_payload("good"), {"model": "no id"}, "not an object", event_payload("bad", status="weird")]
    answer = client.post("/v1/events", json={"events": events}, headers=AUTH)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["accepted"], body["dropped"]) == (1, 3)
    assert any(error.startswith("events[1]: event_id") for error in body["errors"])
    assert set(read_rows(sqlite_url)) == {"good"}


def test_gzip_request_bodies(client: httpx.Client, sqlite_url: str) -> None:
    body = gzip.compress(json.dumps({"events": [event_payload("gz")]}).encode())
    answer = client.post(
        "/v1/events", content=body, headers={**AUTH, "Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert answer.json() == {"accepted": 1, "dropped": 0}
    assert "gz" in read_rows(sqlite_url)


@pytest.mark.parametrize("path", ["/v1/events", "/v1/traces"])
@pytest.mark.parametrize("authorization", [None, "Bearer nope", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x"])
def test_missing_or_wrong_token_is_401(
    client: httpx.Client, sqlite_url: str, path: str, authorization: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    answer = client.post(path, content=json.dumps({"events": [event_payload("sneaky")]}), headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in answer.text
    assert "sneaky" not in read_rows(sqlite_url)


def test_bad_payloads_are_400_with_a_reason(client: httpx.Client, sqlite_url: str) -> None:
    cases: list[tuple[str, bytes, dict[str, str], int, str]] = [
        ("/v1/events", b"{not json", OTLP_JSON, 400, "invalid JSON"),
        ("/v1/events", b'{"events": 5}', OTLP_JSON, 400, "events"),
        ("/v1/events", b"[1, 2]", OTLP_JSON, 400, "events"),
        ("/v1/events", b"\x1f\x8b\x08broken", {**OTLP_JSON, "Content-Encoding": "gzip"}, 400, "gzip"),
        ("/v1/events", b"{}", {**OTLP_JSON, "Content-Encoding": "br"}, 415, "Content-Encoding"),
        ("/v1/events", b"<xml/>", {**AUTH, "Content-Type": "text/xml"}, 415, "Content-Type"),
    ]
    for path, body, headers, status, reason in cases:
        answer = client.post(path, content=body, headers=headers)
        assert answer.status_code == status, (body, answer.text)
        assert reason in answer.json()["reason"]
    assert_still_serving(client, sqlite_url)


# --- size limits ---------------------------------------------------------------------------------------------


def test_oversized_bodies_are_413(client: httpx.Client, sqlite_url: str) -> None:
    padding = "x" * 300_000
    too_big = json.dumps({"events": [event_payload("big", error_message=padding)]}).encode()
    assert client.post("/v1/events", content=too_big, headers=OTLP_JSON).status_code == 413
    # A gzip bomb: small on the wire, far over the limit once inflated.
    bomb = gzip.compress(b'{"events": [' + b" " * 5_000_000 + b"]}")
    assert len(bomb) < 256 * 1024
    answer = client.post("/v1/events", content=bomb, headers={**OTLP_JSON, "Content-Encoding": "gzip"})
    assert answer.status_code == 413
    assert "decompressed" in answer.json()["reason"]
    # OTLP answers its errors with a google.rpc.Status.
    answer = client.post("/v1/traces", content=b"\x00" * 300_000, headers=PROTOBUF)
    assert answer.status_code == 413
    assert RpcStatus.FromString(answer.content).code == 8  # RESOURCE_EXHAUSTED
    assert "big" not in read_rows(sqlite_url)
    assert_still_serving(client, sqlite_url)


def test_declared_length_over_the_limit_is_refused_before_reading(server: IngestServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + TOKEN.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n"
        )
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413")


# --- OTLP ----------------------------------------------------------------------------------------------------


def test_real_otlp_exporter_lands_as_events(server: IngestServer, sqlite_url: str) -> None:
    exporter = OTLPSpanExporter(endpoint=server.url + "/v1/traces", headers=AUTH, compression=Compression.Gzip)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("handler") as parent:
        with tracer.start_as_current_span(
            "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=llm_attributes("otlp-ok")
        ) as ok:
            pass
        with tracer.start_as_current_span(
            "chat gpt-4o-mini",
            kind=SpanKind.CLIENT,
            attributes=llm_attributes("otlp-err", **{sc.ERROR_TYPE: "Timeout"}),
        ) as err:
            err.set_status(Status(StatusCode.ERROR, "timed out"))
    provider.shutdown()

    rows = read_rows(sqlite_url)
    assert set(rows) == {"otlp-ok", "otlp-err"}  # the plain "handler" span is not an event
    expected = span_to_event(ok)  # type: ignore[arg-type]
    row = rows["otlp-ok"]
    assert row["trace_id"] == format(parent.get_span_context().trace_id, "032x") == expected.trace_id
    assert row["span_id"] == expected.span_id
    assert row["parent_span_id"] == format(parent.get_span_context().span_id, "016x")
    assert row["finish_reasons"] == ["stop"] and row["labels"] == {"feature": "tests"}
    assert row["timestamp"] == expected.timestamp
    assert rows["otlp-err"]["status"] == "error" and rows["otlp-err"]["error_type"] == "Timeout"


def test_otlp_protobuf_answer_and_replay(client: httpx.Client, sqlite_url: str) -> None:
    body = otlp_body(["p1", "p2"], non_llm=1)
    for _ in range(2):
        answer = client.post("/v1/traces", content=body, headers=PROTOBUF)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/x-protobuf"
        response = ExportTraceServiceResponse.FromString(answer.content)
        assert not response.HasField("partial_success")
    assert count_rows(sqlite_url) == 2


def _hex_ids(document: dict[str, Any]) -> dict[str, Any]:
    """OTLP JSON spells ids in hex (protobuf's own JSON mapping would use base64)."""
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return document


def test_otlp_json(client: httpx.Client, sqlite_url: str) -> None:
    spans = make_spans(["j1", "j2"])
    document = _hex_ids(json_format.MessageToDict(encode_spans(spans)))
    document["unknownField"] = {"ignored": True}  # receivers must ignore unknown fields
    answer = client.post("/v1/traces", content=json.dumps(document), headers=OTLP_JSON)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {}
    rows = read_rows(sqlite_url)
    assert set(rows) == {"j1", "j2"}
    assert rows["j1"]["trace_id"] == format(spans[0].context.trace_id, "032x")


def test_otlp_partial_success_reports_rejected_spans(client: httpx.Client, sqlite_url: str) -> None:
    request = encode_spans(make_spans(["fine", "broken"]))
    for span in request.resource_spans[0].scope_spans[0].spans:
        for attribute in span.attributes:
            is_broken = any(
                a.key == sc.LEANLLM_REQUEST_ID and a.value.string_value == "broken" for a in span.attributes
            )
            if is_broken and attribute.key == sc.GEN_AI_RESPONSE_FINISH_REASONS:
                attribute.value.Clear()
                attribute.value.int_value = 5  # not a list of strings
    answer = client.post("/v1/traces", content=request.SerializeToString(), headers=PROTOBUF)
    assert answer.status_code == 200
    response = ExportTraceServiceResponse.FromString(answer.content)
    assert response.partial_success.rejected_spans == 1
    assert response.partial_success.error_message
    assert set(read_rows(sqlite_url)) == {"fine"}


def test_malformed_otlp_is_400_and_the_service_keeps_serving(client: httpx.Client, sqlite_url: str) -> None:
    cases = [
        (b"\xff\xff\xff\xff garbage", PROTOBUF),
        (otlp_body(["cut"])[:-7], PROTOBUF),
        (b"{broken json", OTLP_JSON),
        (b'{"resourceSpans": "nope"}', OTLP_JSON),
    ]
    for body, headers in cases:
        answer = client.post("/v1/traces", content=body, headers=headers)
        assert answer.status_code == 400, (body, answer.text)
        if headers is PROTOBUF:
            status = RpcStatus.FromString(answer.content)
        else:
            status = json_format.Parse(answer.content, RpcStatus())
        assert status.code == 3 and status.message  # INVALID_ARGUMENT with a reason
    # One malformed span costs only itself (issue 19): partial success, its field named, its value not quoted.
    bad_span = b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}'
    answer = client.post("/v1/traces", content=bad_span, headers=OTLP_JSON)
    assert answer.status_code == 200, answer.text
    partial = json_format.Parse(answer.content, ExportTraceServiceResponse()).partial_success
    assert partial.rejected_spans == 1 and "startTimeUnixNano" in partial.error_message
    assert "soon" not in partial.error_message
    answer = client.post("/v1/traces", content=b"x", headers={**AUTH, "Content-Type": "text/plain"})
    assert answer.status_code == 415
    # Raw garbage on the socket does not take the server down either.
    with socket.create_connection(("127.0.0.1", client.base_url.port or 0), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
        sock.recv(1024)
    assert "cut" not in read_rows(sqlite_url)
    assert_still_serving(client, sqlite_url)


def test_service_exporter_and_otlp_paths_give_the_same_event(server: IngestServer, sqlite_url: str) -> None:
    from leanllm_otel.config import LeanLLMConfig
    from leanllm_otel.exporters.service import LeanLLMServiceExporter

    via_service = make_spans(["same-s"])
    via_otlp = make_spans(["same-o"])
    exporter = LeanLLMServiceExporter(endpoint=server.url, api_key=TOKEN, config=LeanLLMConfig())
    assert exporter.export(via_service) is SpanExportResult.SUCCESS
    exporter.shutdown()
    otlp = OTLPSpanExporter(endpoint=server.url + "/v1/traces", headers=AUTH)
    assert otlp.export(via_otlp) is SpanExportResult.SUCCESS
    otlp.shutdown()
    rows = read_rows(sqlite_url)
    ignore = {"event_id", "trace_id", "span_id", "parent_span_id", "timestamp", "end_timestamp", "recorded_at"}
    strip = lambda row: {k: v for k, v in row.items() if k not in ignore}  # noqa: E731
    assert strip(rows["same-s"]) == strip(rows["same-o"])


# --- store failures, PostgreSQL ------------------------------------------------------------------------------


def test_postgres_store_and_503_while_the_database_is_down(postgres_url: str, postgres_server: Any) -> None:
    with (
        IngestServer(postgres_url, port=0, token=TOKEN) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        assert http.post("/v1/traces", content=otlp_body(["pg-1"]), headers=PROTOBUF).status_code == 200
        postgres_server.stop()
        try:
            answer = http.post("/v1/events", json={"events": [event_payload("pg-2")]}, headers=AUTH)
            assert answer.status_code == 503
            assert answer.headers["retry-after"]
        finally:
            postgres_server.start()
        deadline = time.monotonic() + 20
        while True:  # the pool reconnects once the database is back
            answer = http.post("/v1/events", json={"events": [event_payload("pg-2")]}, headers=AUTH)
            if answer.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert answer.status_code == 200
    assert set(read_rows(postgres_url)) == {"pg-1", "pg-2"}


# --- the CLI command -----------------------------------------------------------------------------------------


def test_serve_command_runs_and_stops_on_sigterm(sqlite_url: str) -> None:
    port = free_port()
    env = {**os.environ, "LEANLLM_INGEST_TOKEN": TOKEN}
    code = "import sys; from leanllm_otel.cli.serve_command import main; sys.exit(main(sys.argv[1:]))"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--database-url", sqlite_url, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        answer = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                answer = httpx.post(
                    f"http://127.0.0.1:{port}/v1/events",
                    json={"events": [event_payload("cli")]},
                    headers=AUTH,
                    timeout=5,
                )
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer is not None and answer.status_code == 200, process.stdout and process.stdout.read()
        unauthorised = httpx.post(f"http://127.0.0.1:{port}/v1/events", json={"events": []}, timeout=5)
        assert unauthorised.status_code == 401
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    output = process.stdout.read().decode() if process.stdout else ""
    assert TOKEN not in output
    assert "cli" in read_rows(sqlite_url)


def test_serve_refuses_a_public_address_without_a_token(sqlite_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LEANLLM_INGEST_TOKEN"}
    code = "import sys; from leanllm_otel.cli.serve_command import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", code, "--database-url", sqlite_url, "--host", "0.0.0.0", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "token" in result.stderr.lower()
