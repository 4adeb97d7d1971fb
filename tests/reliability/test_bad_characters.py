"""Issue 19, item 3: one bad character never costs an event (or a request).

A label with a lone surrogate (``"x\\ud800"``: half an emoji from a web form) made ``LeanLLMServiceExporter`` drop
the event (``serialization_error``); 19 of 20 calls reached the service. PostgreSQL also refuses NUL. Every
exporter now replaces what its format cannot carry with U+FFFD, keeps the event, and counts the repair under
``REPAIRED_VALUE`` in its findings; ``leanllm-otel serve`` stores every valid event of a request.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import litellm
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanContext, TraceFlags

import leanllm_otel
from leanllm_otel import semconv as sc
from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.exporters.sql import SQLSpanExporter
from leanllm_otel.ingest import IngestServer
from leanllm_otel.repair import repair_text
from service_helpers import read_rows
from support import LeanLLMServiceServer, OTLPReceiver

REPAIRED = sc.FINDING_REPAIRED_VALUE
BAD_LABEL = "x\ud800"  # a truncated emoji from a web form


def _calls(n: int, bad_at: int, label: str = BAD_LABEL) -> None:
    for i in range(n):
        labels = {"form": label if i == bad_at else f"ok-{i}"}
        with leanllm_otel.use_context(labels=labels):
            litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], mock_response="ok")


def test_the_issue_shape_twenty_calls_one_bad_label_all_reach_the_service() -> None:
    drops: list[tuple[int, str]] = []
    with LeanLLMServiceServer(api_key="bad-char-token") as service:
        provider = TracerProvider()
        pipe = leanllm_otel.configure(tracer_provider=provider, endpoint=service.endpoint, otlp=False,
                                      leanllm_api_key="bad-char-token",
                                      on_dropped_events=lambda count, reason: drops.append((count, reason)))
        try:
            _calls(20, bad_at=19)
            assert pipe.force_flush(20_000)
        finally:
            pipe.shutdown()
            provider.shutdown()
        events = service.events
    assert len(events) == 20 and not drops
    (bad,) = [e for e in events if not e["labels"]["form"].startswith("ok-")]
    assert bad["labels"]["form"] == "x\ufffd" and bad["findings"] == {REPAIRED: 1}
    assert all(REPAIRED not in e["findings"] for e in events if e is not bad)


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_sql_stores_keep_every_event(store: str, tmp_path: Path, postgres_url: str) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}" if store == "sqlite" else postgres_url
    provider = TracerProvider()
    pipe = leanllm_otel.configure(tracer_provider=provider, database_url=url, otlp=False, capture_content=True,
                                  redaction_mode="full")
    try:
        _calls(5, bad_at=1)
        _calls(1, bad_at=0, label="a\x00b")  # NUL: SQLite holds it, PostgreSQL (text and JSONB) does not
        with pytest.raises(Exception, match="bad"):
            litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "nul\x00 and x\ud800"}],
                               mock_response=Exception("bad\x00value x\ud800"))
        assert pipe.force_flush(20_000)
        assert pipe.drops.total == 0
    finally:
        pipe.shutdown()
        provider.shutdown()
    rows = list(read_rows(url).values())
    assert len(rows) == 7
    by_label = {row["labels"].get("form"): row for row in rows if row["labels"]}
    assert by_label["x\ufffd"]["findings"] == {REPAIRED: 1}
    nul = by_label["a\ufffdb" if store == "postgresql" else "a\x00b"]
    assert nul["findings"] == ({REPAIRED: 1} if store == "postgresql" else {})
    (failed,) = [row for row in rows if row["status"] == "error"]
    assert "bad" in failed["error_message"] and "x\ufffd" in failed["error_message"]
    assert "nul" in json.dumps(failed["input_messages"]) and "\ud800" not in repr(failed)


def test_otlp_keeps_the_event(otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", otlp_receiver.traces_endpoint)
    provider = TracerProvider()
    pipe = leanllm_otel.configure(tracer_provider=provider, otlp=True, enable_persistence=False)
    try:
        _calls(3, bad_at=2)
        assert pipe.force_flush(20_000)
    finally:
        pipe.shutdown()
        provider.shutdown()
    spans = otlp_receiver.wait_for_spans(3)
    labels = sorted(s["attributes"][sc.LEANLLM_LABEL_PREFIX + "form"] for s in spans)
    assert labels == ["ok-0", "ok-1", "x\ufffd"]
    (bad,) = [s for s in spans if s["attributes"][sc.LEANLLM_LABEL_PREFIX + "form"] == "x\ufffd"]
    assert json.loads(bad["attributes"][sc.LEANLLM_SECURITY_FINDINGS]) == {REPAIRED: 1}


def _event(event_id: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "timestamp": datetime.now(timezone.utc).isoformat(), "model": "m", **fields}


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_the_issue_shape_fifty_good_events_and_one_bad_are_all_stored(store: str, tmp_path: Path,
                                                                     postgres_url: str) -> None:
    url = f"sqlite:///{tmp_path / 'i.db'}" if store == "sqlite" else postgres_url
    events = [_event(f"good-{i}") for i in range(50)] + [_event("bad", labels={"form": BAD_LABEL},
                                                                error_message="nul\x00")]
    events.append(_event("unstorable", input_tokens=2**70))  # no column can hold it: dropped alone, with a reason
    with IngestServer(url, port=0) as server:
        answer = httpx.post(server.url + "/v1/events", content=json.dumps({"events": events}),
                            headers={"Content-Type": "application/json"}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["accepted"] == 51 and body["dropped"] == 1
    assert len(body["errors"]) == 1 and body["errors"][0].startswith("events[51]: rejected by the event store")
    rows = read_rows(url)
    assert len(rows) == 51 and "unstorable" not in rows
    assert rows["bad"]["labels"] == {"form": "x\ufffd"}
    assert rows["bad"]["findings"][REPAIRED] >= 1


def test_otlp_json_with_a_lone_surrogate_is_stored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"

    def span(request_id: str, label: str) -> dict[str, Any]:
        return {"traceId": "0" * 31 + "1", "spanId": f"{len(label):016x}", "name": "chat m", "startTimeUnixNano": "1",
                "attributes": [{"key": sc.LEANLLM_REQUEST_ID, "value": {"stringValue": request_id}},
                               {"key": sc.LEANLLM_LABEL_PREFIX + "form", "value": {"stringValue": label}}]}

    document = {"resourceSpans": [{"scopeSpans": [{"spans": [span("o1", "fine"), span("o2", BAD_LABEL)]}]}]}
    with IngestServer(url, port=0) as server:
        answer = httpx.post(server.url + "/v1/traces", content=json.dumps(document),
                            headers={"Content-Type": "application/json"}, timeout=30)
    assert answer.status_code == 200 and "rejectedSpans" not in answer.text
    rows = read_rows(url)
    assert rows["o2"]["labels"] == {"form": "x\ufffd"} and rows["o2"]["findings"] == {REPAIRED: 1}
    assert rows["o1"]["findings"] == {}


# --- property: any text in any field reaches every store ---------------------------------------------------------

_HOSTILE = st.text(st.characters(codec=None, exclude_categories=()) | st.sampled_from(
    ["\x00", "\ud800", "\udfff", "\ud83d", "\x1b", "\u202e", "\ufffd"]), max_size=20)


@st.composite
def hostile_spans(draw: Any) -> list[ReadableSpan]:
    spans = []
    for i in range(draw(st.integers(1, 4))):
        attributes: dict[str, Any] = {
            sc.LEANLLM_REQUEST_ID: f"h-{i}-{uuid.uuid4()}",  # examples share one store: ids never repeat
            sc.GEN_AI_OPERATION_NAME: "chat",
            sc.GEN_AI_REQUEST_MODEL: draw(_HOSTILE),
            sc.LEANLLM_LABEL_PREFIX + draw(_HOSTILE): draw(_HOSTILE),
            sc.LEANLLM_USER_ID: draw(_HOSTILE),
            sc.ERROR_TYPE: "E",
            sc.LEANLLM_ERROR_MESSAGE: draw(_HOSTILE),
            sc.GEN_AI_INPUT_MESSAGES: json.dumps([{"role": "user", "parts": [{"type": "text",
                                                                               "content": draw(_HOSTILE)}]}]),
        }
        spans.append(ReadableSpan(name="chat", context=SpanContext(1, i + 1, False, TraceFlags(1)),
                                  attributes=attributes, start_time=1, end_time=2))
    return spans


def _expected(value: str, nul: bool) -> str:
    fixed = repair_text(value, nul=nul)
    return value if fixed is None else fixed


def _check_store(url: str, spans: list[ReadableSpan], nul: bool) -> None:
    exporter = SQLSpanExporter(config=LeanLLMConfig(database_url=url, retry_max_attempts=1))
    try:
        exporter.export(spans)
        assert exporter.drops.total == 0, exporter.drops.by_reason()
    finally:
        exporter.shutdown()
    rows = read_rows(url)
    for span in spans:
        attributes = dict(span.attributes or {})
        row = rows[attributes[sc.LEANLLM_REQUEST_ID]]
        assert row["model"] == _expected(attributes[sc.GEN_AI_REQUEST_MODEL], nul)
        assert row["error_message"] == _expected(attributes[sc.LEANLLM_ERROR_MESSAGE], nul)
        assert row["metadata"]["user_id"] == _expected(attributes[sc.LEANLLM_USER_ID], nul)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(spans=hostile_spans())
def test_any_text_reaches_sqlite(spans: list[ReadableSpan], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    _check_store(url, spans, nul=False)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(spans=hostile_spans())
def test_any_text_reaches_postgresql(spans: list[ReadableSpan], postgres_url: str) -> None:
    _check_store(postgres_url, spans, nul=True)


@settings(max_examples=100, deadline=None)
@given(spans=hostile_spans())
def test_any_text_becomes_a_service_payload(spans: list[ReadableSpan]) -> None:
    from leanllm_otel.event import span_to_event
    from leanllm_otel.exporters.service import _encode

    for span in spans:
        body = _encode(span_to_event(span).to_payload())
        decoded = json.loads(body)
        attributes = dict(span.attributes or {})
        assert decoded["model"] == _expected(attributes[sc.GEN_AI_REQUEST_MODEL], nul=False)
