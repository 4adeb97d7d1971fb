"""Secret-leak audit: distinct markers planted in every credential and content slot; every export path and every
log line is searched for them.

``metadata`` mode (the default) allows no content at all, so no marker may appear anywhere. The one place a
credential legitimately goes is the LeanLLM service request's ``Authorization`` header; only bodies are checked
there. LiteLLM's own loggers and the provider HTTP clients (openai, httpx, httpcore) are captured but not asserted
on: at DEBUG they log request options, headers and URLs by their own design (see README).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import litellm
import pytest
from opentelemetry.sdk.trace import TracerProvider

import leanllm_otel
from service_helpers import read_rows
from support import LeanLLMServiceServer, OpenAIServer, OTLPReceiver

from .helpers import CollectingExporter

MARKERS = {
    "api_key": "sk-auditKEYmarker0001",
    "header": "hdr-audit-marker-0002",
    "userinfo": "userinfo-marker-0003",
    "query": "query-marker-0004",
    "service_token": "lllm_token_marker_0005",
    "db_password": "pgpass-marker-0006",
    "prompt": "prompt-marker-0007",
    "error": "errmsg-marker-0008",
}


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.records.append((record.name, text))


@pytest.fixture
def capture() -> Iterator[Capture]:
    handler = Capture()
    loggers = [logging.getLogger(), logging.getLogger("leanllm_otel"), logging.getLogger("LiteLLM"),
               logging.getLogger("LiteLLM Router"), logging.getLogger("LiteLLM Proxy")]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    for lg in loggers[2:]:
        lg.addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)
        for lg in loggers[2:]:
            lg.removeHandler(handler)
        for lg, level in saved:
            lg.setLevel(level)


def _calls(openai_server: OpenAIServer) -> None:
    prompt = [{"role": "user", "content": f"please keep {MARKERS['prompt']} secret"}]
    api_base = f"http://audit:{MARKERS['userinfo']}@127.0.0.1:{openai_server.port}/v1?sig={MARKERS['query']}"
    for base in (api_base, openai_server.base_url):
        with contextlib.suppress(Exception):  # a failed call is an error event: its message is audited too
            litellm.completion(model="openai/gpt-4o-mini", messages=prompt, api_key=MARKERS["api_key"],
                               api_base=base, extra_headers={"X-Audit": MARKERS["header"]}, max_retries=0)
    with contextlib.suppress(Exception):
        litellm.completion(model="gpt-4o-mini", messages=prompt, api_key=MARKERS["api_key"],
                           mock_response=Exception(f"provider refused {MARKERS['error']} {MARKERS['api_key']}"))


def _no_marker(where: str, blob: bytes | str, allowed: tuple[str, ...] = ()) -> None:
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    found = [name for name, marker in MARKERS.items() if marker in text and name not in allowed]
    assert not found, f"{found} leaked into {where}"


def test_no_secret_reaches_any_exporter_or_log(
    tmp_path: Path, openai_server: OpenAIServer, otlp_receiver: OTLPReceiver, postgres_server: Any,
    postgres_url: str, capture: Capture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", otlp_receiver.traces_endpoint)
    sqlite_path = tmp_path / "events.db"
    pg_with_password = postgres_url.replace("postgres@", f"postgres:{MARKERS['db_password']}@")
    outputs: list[tuple[str, Any]] = []

    for database_url in (f"sqlite:///{sqlite_path}", pg_with_password):
        memory = CollectingExporter()
        provider = TracerProvider()
        pipe = leanllm_otel.configure(tracer_provider=provider, database_url=database_url, otlp=True,
                                      exporters=[memory])
        try:
            _calls(openai_server)
            assert pipe.force_flush(20_000)
            assert pipe.counters["kept"] + pipe.counters["kept_errors"] == 3
        finally:
            pipe.shutdown()
            provider.shutdown()
        outputs.append(("in-memory spans", repr([(s.name, dict(s.attributes or {}), [dict(e.attributes or {})
                                                  for e in s.events], s.status) for s in memory.spans])))
        outputs.append((f"rows of {database_url.split(':')[0]}", repr(read_rows(postgres_url if "postgres" in
                                                                                  database_url else database_url))))
        outputs.append(("pipeline repr", repr(pipe.exporters) + repr(pipe.config)))

    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{sqlite_path}{suffix}")
        if path.exists():
            outputs.append((f"sqlite file {path.name}", path.read_bytes()))
    outputs.extend(("OTLP body", body) for body in otlp_receiver.raw_bodies)

    with LeanLLMServiceServer(api_key=MARKERS["service_token"]) as service:
        provider = TracerProvider()
        pipe = leanllm_otel.configure(tracer_provider=provider, endpoint=service.endpoint,
                                      leanllm_api_key=MARKERS["service_token"], otlp=False)
        try:
            _calls(openai_server)
            assert pipe.force_flush(20_000)
        finally:
            pipe.shutdown()
            provider.shutdown()
        assert service.requests and all(r.status == 200 for r in service.requests)
        assert len(service.events) == 3
        outputs.extend(("service body", r.body) for r in service.requests)
        outputs.extend(("service headers (bar Authorization)",
                        repr({k: v for k, v in r.headers.items() if k != "authorization"}))
                       for r in service.requests)
        outputs.append(("service exporter repr", repr(pipe.exporters)))

    assert len(outputs) > 6
    for where, blob in outputs:
        _no_marker(where, blob)
    ours = [text for name, text in capture.records if name.startswith("leanllm_otel")]
    assert ours, "expected some leanllm_otel log lines to audit"
    for text in ours:
        _no_marker("a leanllm_otel log line", text)
    # everything else that logged (OTel SDK, asyncio, SQLAlchemy, ...) except the application's own LLM stack:
    # LiteLLM and the provider HTTP clients log request options, URLs and headers at DEBUG by their own design.
    third_party = ("LiteLLM", "litellm", "openai", "httpx", "httpcore")
    for name, text in capture.records:
        if not name.startswith(third_party):
            _no_marker(f"a log line of {name}", text)
    assert any(name.startswith(third_party) for name, _ in capture.records)


# --- issue 19: the shapes that once got through, in the modes that export content ----------------------------

SHAPE_CARD = "4111 1111 1111 1111"
SHAPE_KEY = "AKIAQ7XSHAPEMARK1919"
SHAPE_LATER = "later-written-marker-0019"
SHAPE_SIG = "sig+marker/0019="  # a SAS-style signature, percent-encoded in the URL
SHAPE_GW_USER, SHAPE_GW_PASSWORD = "gwuser19", "gw-password-marker-0019"
SHAPE_TENANT = "tenant-ref-marker-0019"
SHAPE_API_KEY = "sk-shape-api-key-marker-0019"
SHAPE_PASSWORDS = [f"Pw{i:02d}q7ShapeX" for i in range(40)]  # connection strings around the error window's end


def _shape_forms(value: str) -> list[str]:
    import base64
    from urllib.parse import quote, quote_plus

    return [value, quote(value, safe=""), quote_plus(value), base64.b64encode(value.encode()).decode()]


def _issue_19_calls(gateway: Any) -> None:
    import json as _json
    from urllib.parse import quote

    # 1: values after a JSON escape in tool arguments, a tool result and a pasted JSON message
    arguments = _json.dumps({"note": f"card:\n{SHAPE_CARD}", "key": f"\uff1a{SHAPE_KEY}"})
    history: list[dict[str, Any]] = [
        {"role": "user", "content": _json.dumps({"pasted": f"data\n{SHAPE_CARD}"})},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "save", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "c1", "content": arguments},
    ]
    litellm.completion(model="gpt-4o-mini", messages=history, mock_response="ok")
    # 4: the application edits the shared history after the call; the next call is not logged
    history[0]["content"] = SHAPE_LATER
    history[2]["content"] = SHAPE_LATER
    with leanllm_otel.use_context(log=False):
        litellm.completion(model="gpt-4o-mini", messages=history, mock_response="ok")
    # 2: an error message whose redaction shrinks (a PEM block) while connection strings straddle the cut
    pem = "-----BEGIN RSA PRIVATE KEY-----\n" + "MIIEpAIBAAKCAQEA\n" * 270 + "-----END RSA PRIVATE KEY-----"
    tail = " ".join(f"postgresql://app:{password}@db.internal/prod" for password in SHAPE_PASSWORDS)
    with contextlib.suppress(Exception):
        litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}],
                           mock_response=Exception(f"{pem} {tail}"))
    # 6: a gateway that echoes the request (query secret percent-encoded, Basic user-info, a neutral header)
    api_base = (f"http://{SHAPE_GW_USER}:{SHAPE_GW_PASSWORD}@127.0.0.1:{gateway.port}/v1"
                f"?sig={quote(SHAPE_SIG, safe='')}")
    with contextlib.suppress(Exception):
        litellm.completion(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                           api_key=SHAPE_API_KEY, api_base=api_base, extra_headers={"X-Tenant-Ref": SHAPE_TENANT},
                           max_retries=0)
    # 3: one bad character in a label
    with leanllm_otel.use_context(labels={"form": "x\ud800"}):
        litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], mock_response="ok")


@pytest.mark.parametrize("mode", ["full", "redacted"])
def test_the_issue_19_shapes_reach_no_exporter_or_log(
    mode: str, tmp_path: Path, otlp_receiver: OTLPReceiver, capture: Capture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import base64

    from .echo_gateway import EchoGateway

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", otlp_receiver.traces_endpoint)
    sqlite_path = tmp_path / "shapes.db"
    memory = CollectingExporter()
    provider = TracerProvider()
    pipe = leanllm_otel.configure(tracer_provider=provider, database_url=f"sqlite:///{sqlite_path}", otlp=True,
                                  exporters=[memory], capture_content=True, redaction_mode=mode,
                                  max_content_chars=256, flush_interval_ms=3_600_000)
    try:
        with EchoGateway() as gateway:
            _issue_19_calls(gateway)
        assert pipe.force_flush(20_000)
        assert pipe.drops.total == 0  # 3: nothing lost for a bad character
    finally:
        pipe.shutdown()
        provider.shutdown()
    rows = read_rows(f"sqlite:///{sqlite_path}")
    assert len(rows) == len(memory.spans) == 4 and len(otlp_receiver.wait_for_spans(4)) == 4

    never = [SHAPE_LATER, SHAPE_GW_PASSWORD, SHAPE_TENANT, SHAPE_API_KEY,
             base64.b64encode(f"{SHAPE_GW_USER}:{SHAPE_GW_PASSWORD}".encode()).decode(),
             *_shape_forms(SHAPE_SIG)]
    if mode == "redacted":  # full mode exports content verbatim, by definition
        never += [SHAPE_CARD, SHAPE_KEY, *(password[:7] for password in SHAPE_PASSWORDS)]
    outputs: list[tuple[str, Any]] = [
        ("rows", repr(rows)),
        ("in-memory spans", repr([(dict(s.attributes or {}), [dict(e.attributes or {}) for e in s.events])
                                  for s in memory.spans])),
        *(("OTLP body", body) for body in otlp_receiver.raw_bodies),
    ]
    for suffix in ("", "-wal"):
        if Path(f"{sqlite_path}{suffix}").exists():
            outputs.append((f"sqlite file{suffix}", Path(f"{sqlite_path}{suffix}").read_bytes()))
    outputs += [(f"log {name}", text) for name, text in capture.records if name.startswith("leanllm_otel")]
    for where, blob in outputs:
        text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
        found = [value for value in never if value in text]
        assert not found, f"{found} leaked into {where}"


def test_the_ingest_service_quotes_no_value(tmp_path: Path, capture: Capture) -> None:
    import json as _json

    import httpx

    from leanllm_otel.ingest import IngestServer

    marker = "prompt-in-a-malformed-value-0019"
    span = {"name": "chat", "startTimeUnixNano": marker,
            "attributes": [{"key": "leanllm.request_id", "value": {"stringValue": "r"}},
                           {"key": "x", "value": {"intValue": marker}}]}
    bodies = [("/v1/traces", {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}),
              ("/v1/events", {"events": [{"event_id": "e", "timestamp": marker, "labels": {marker: 1}}]})]
    with IngestServer(f"sqlite:///{tmp_path / 'i.db'}", port=0, log_level="debug") as server:
        answers = [httpx.post(server.url + path, content=_json.dumps(body), timeout=10,
                              headers={"Content-Type": "application/json"}) for path, body in bodies]
    for answer in answers:
        assert answer.status_code in (200, 400) and marker not in answer.text
    assert not [text for _, text in capture.records if marker in text]
