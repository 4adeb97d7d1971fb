"""Hostile and malformed input through redaction, detection and the span -> event mapping (hypothesis).

Invariants: nothing raises (the span -> event mapping rejects a malformed span with ``ValueError`` only), every
JSON attribute parses, a planted secret or PII never survives ``redacted``,
``hashed`` or ``metadata`` mode, content attributes stay under the cap; the detectors run in linear time.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags

from leanllm_otel import semconv as sc
from leanllm_otel.event import event_from_attributes, span_to_event
from leanllm_otel.processing.content import ContentRenderer
from leanllm_otel.processing.detectors import default_detector
from leanllm_otel.processing.record import CallRecord
from leanllm_otel.redaction_mode import RedactionMode
from leanllm_otel.settings import TelemetrySettings

CAP = 4096
SETTINGS = TelemetrySettings(capture_content=True, max_content_chars=CAP)
RENDERER = ContentRenderer(SETTINGS, hash_key=b"reliability-key")

EMAIL = "planted.marker.q7x@example.com"
AWS_KEY = "AKIAQ7XPLANTEDMARKER"
SECRETS = (EMAIL, AWS_KEY)

JSON_ATTRIBUTES = (
    sc.GEN_AI_INPUT_MESSAGES,
    sc.GEN_AI_OUTPUT_MESSAGES,
    sc.GEN_AI_SYSTEM_INSTRUCTIONS,
    sc.GEN_AI_TOOL_DEFINITIONS,
    sc.LEANLLM_TOOL_CALLS,
    sc.LEANLLM_SECURITY_FINDINGS,
)

texts = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=300) | st.sampled_from(
    ["\x00", "\ud800", "\udfff lone", "a\x00b", "{\"unterminated", "\u202e rtl", "🔑" * 50, ""]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=30,
)


@st.composite
def content_parts(draw: Any) -> Any:
    text = draw(texts)
    kind = draw(st.sampled_from(["text", "image_url", "image_data", "input_audio", "file", "weird", "nested"]))
    if kind == "text":
        return {"type": "text", "text": text}
    if kind == "image_url":
        return {"type": "image_url", "image_url": {"url": f"https://u:pw@example.com/i.png?sig={text[:20]}"}}
    if kind == "image_data":
        return {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "QUJD" * draw(st.integers(0, 50))}}
    if kind == "input_audio":
        return {"type": "input_audio", "input_audio": {"data": "AAAA", "format": draw(texts)}}
    if kind == "file":
        return {"type": "file", "file": {"file_id": draw(texts), "filename": draw(texts)}}
    if kind == "nested":
        return draw(json_values)
    return {"type": draw(texts), "payload": draw(json_values)}


@st.composite
def messages(draw: Any) -> list[Any]:
    secret = draw(st.sampled_from(SECRETS))
    out: list[Any] = []
    for _ in range(draw(st.integers(1, 6))):
        role = draw(st.sampled_from(["system", "user", "assistant", "tool", "developer", draw(texts)]))
        content: Any
        shape = draw(st.sampled_from(["text", "parts", "none", "garbage"]))
        if shape == "text":
            content = draw(texts)
        elif shape == "parts":
            content = draw(st.lists(content_parts(), max_size=4))
        elif shape == "none":
            content = None
        else:
            content = draw(json_values)
        message: dict[Any, Any] = {"role": role, "content": content}
        if role == "assistant" and draw(st.booleans()):
            arguments = draw(st.sampled_from(['{"a": ', "not json", '{"deep": ' * 50, json.dumps(draw(json_values))]))
            message["tool_calls"] = [{"id": draw(texts), "type": "function",
                                      "function": {"name": draw(texts), "arguments": arguments}}]
        if draw(st.booleans()):
            message[draw(texts)] = draw(json_values)
        out.append(message)
    # the planted secret, between spaces, in one text slot
    out.append({"role": "user", "content": f"{draw(texts)} {secret} {draw(texts)}"})
    return out


def _record(msgs: list[Any], mode: RedactionMode, response: Any = None) -> CallRecord:
    return CallRecord(span_id=1, operation=sc.OP_CHAT, mode=mode, capture=True, scan=True, messages=msgs,
                      response=response, tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
                      error_message=f"provider said: {EMAIL} {AWS_KEY}")


def _check(attributes: dict[str, Any], mode: RedactionMode) -> None:
    for name in JSON_ATTRIBUTES:
        if name in attributes:
            value = attributes[name]
            assert isinstance(value, str)
            json.loads(value)
            if name != sc.LEANLLM_SECURITY_FINDINGS:
                assert len(value) <= CAP, (name, len(value))
            value.encode("utf-8")  # exportable: no lone surrogates
    if mode is not RedactionMode.FULL:
        blob = json.dumps({k: str(v) for k, v in attributes.items()}, ensure_ascii=False)
        for secret in SECRETS:
            assert secret not in blob, (mode, secret)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(msgs=messages(), mode=st.sampled_from([RedactionMode.REDACTED, RedactionMode.HASHED, RedactionMode.METADATA]))
def test_rendering_hostile_messages(msgs: list[Any], mode: RedactionMode) -> None:
    response = {"id": "r", "choices": [{"message": {"role": "assistant", "content": f"sure: {EMAIL} ok"}}]}
    attributes = RENDERER.render(_record(msgs, mode, response))
    _check(attributes, mode)
    # and the event mapping takes whatever rendering produced
    event = event_from_attributes({**attributes, sc.LEANLLM_REQUEST_ID: "e"}, start_time_ns=1)
    json.dumps(event.to_payload(), ensure_ascii=False).encode("utf-8", "surrogatepass")


def test_huge_inputs_stay_capped_and_redacted() -> None:
    megabyte = ("lorem ipsum " * 90_000)[:1_000_000]
    cases: list[list[Any]] = [
        [{"role": "user", "content": megabyte + f" {EMAIL} " + megabyte}],
        [{"role": "user", "content": f"m{i} {EMAIL if i % 997 == 0 else ''}"} for i in range(10_000)],
        [{"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function", "function": {
            "name": "f", "arguments": json.dumps(_nest(400, EMAIL))}}]}],
    ]
    for msgs in cases:
        for mode in (RedactionMode.REDACTED, RedactionMode.HASHED, RedactionMode.METADATA):
            _check(RENDERER.render(_record(msgs, mode)), mode)


def _nest(depth: int, leaf: str) -> Any:
    value: Any = leaf
    for i in range(depth):
        value = {f"k{i}": [value]}
    return value


attribute_values = (
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | texts
    | st.lists(texts, max_size=3) | st.lists(st.integers(), max_size=3)
)


@settings(max_examples=150, deadline=None)
@given(
    attributes=st.dictionaries(
        st.sampled_from([
            sc.GEN_AI_USAGE_INPUT_TOKENS, sc.GEN_AI_RESPONSE_FINISH_REASONS, sc.LEANLLM_COST_USD,
            sc.GEN_AI_INPUT_MESSAGES, sc.LEANLLM_SECURITY_FINDINGS, sc.GEN_AI_REQUEST_TEMPERATURE,
            sc.LEANLLM_STREAM, sc.SERVER_PORT, sc.ERROR_TYPE, sc.LEANLLM_LATENCY_MS,
            sc.LEANLLM_LABEL_PREFIX + "team", sc.LEANLLM_LABEL_PREFIX + "\x00", sc.LEANLLM_TAG_PREFIX + "t",
        ]) | texts,
        attribute_values,
        max_size=12,
    ),
    event_id=texts,
)
@example(attributes={sc.GEN_AI_USAGE_INPUT_TOKENS: float("inf")}, event_id="")  # int(inf) raised OverflowError
def test_span_to_event_takes_any_attributes(attributes: dict[str, Any], event_id: str) -> None:
    attributes = {k: v for k, v in attributes.items() if v is not None}
    attributes[sc.LEANLLM_REQUEST_ID] = event_id
    span = ReadableSpan(name="chat x", context=SpanContext(1, 2, False, TraceFlags(1)), attributes=attributes,
                        start_time=1, end_time=2)
    try:
        event = span_to_event(span)
    except ValueError:
        # A malformed span is rejected with a ValueError (pydantic's included), which the SQL exporter counts as
        # a mapping_error and the ingest service reports as a rejected span; nothing else may escape.
        return
    assert event.event_id == event_id
    assert all(isinstance(v, str) for v in event.labels.values())  # non-string label values become strings
    json.dumps(event.to_payload(), ensure_ascii=False)


# --- regex safety ---------------------------------------------------------------------------------------------

SHAPES = {
    "email-local": lambda n: "a" * n + "@",
    "email-dots": lambda n: "a." * (n // 2) + "@x",
    "domain": lambda n: "x@" + "a-" * (n // 2),
    "digits": lambda n: "1 " * (n // 2),
    "card-like": lambda n: "4111-" * (n // 5),
    "key-prefix": lambda n: "sk-" + "A" * n,
    "base64ish": lambda n: "Ab9+/" * (n // 5),
    "password": lambda n: "password=" + "x" * n,
    "url-creds": lambda n: "postgres://" + "u" * n + ":",
    "ipv6": lambda n: "1:" * (n // 2),
    "mixed": lambda n: ("ab1@cd.e " * (n // 9)),
}


def _time(text: str) -> float:
    detector = default_detector()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        detector.redact(text)
        best = min(best, time.perf_counter() - started)
    return best


def test_detectors_run_in_linear_time_on_crafted_inputs() -> None:
    default_detector().scan("warm up")
    slow: dict[str, tuple[float, float]] = {}
    for name, make in SHAPES.items():
        small, large = _time(make(10_000)), _time(make(100_000))
        # 10x the input: linear is ~10x; quadratic would be ~100x. Generous bound, plus an absolute floor.
        if large > 30 * max(small, 1e-3) and large > 0.05:
            slow[name] = (small, large)
    assert not slow, slow
