"""Issue 19, item 1: a JSON escape before a value (``\\n``, ``\\uXXXX``) must not hide it from redaction.

Tool-call arguments, tool results and JSON pasted into a message are JSON *text*: in
``{"note": "Customer data:\\n4111 1111 1111 1111"}`` the characters before the card are ``\\`` and ``n``, so no
word boundary held and the value was exported untouched in ``redacted`` mode. Every detector type is planted in
three placements (plain, after ``\\n``, after a ``\\u`` escape) in every slot that carries JSON text.
"""

from __future__ import annotations

import json
from typing import Any

import litellm
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leanllm_otel import semconv as sc
from leanllm_otel.processing.content import ContentRenderer
from leanllm_otel.processing.record import CallRecord
from leanllm_otel.redaction_mode import RedactionMode
from leanllm_otel.sensitive import is_secret_name
from leanllm_otel.settings import TelemetrySettings

from .shapes import INJECTIONS, NEEDLES, PLACEMENTS, REDACTABLE, SAMPLES, as_json_text, found_types, leaked

RENDERER = ContentRenderer(TelemetrySettings(capture_content=True), hash_key=b"escape-tests")
SLOTS = ("message", "request_tool_arguments", "response_tool_arguments", "tool_result", "streamed_deltas",
         "truncated_arguments")


def _call(arguments: str) -> dict[str, Any]:
    return {"id": "call_1", "type": "function", "function": {"name": "save_note", "arguments": arguments}}


def _stream(arguments: str, piece: int = 4) -> list[dict[str, Any]]:
    head = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "save_note", "arguments": ""}}
    deltas = [head] + [{"index": 0, "function": {"arguments": arguments[i : i + piece]}}
                       for i in range(0, len(arguments), piece)]
    chunks = [{"choices": [{"index": 0, "delta": {"tool_calls": [delta]}}]} for delta in deltas]
    return [*chunks, {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}]


def record_for(slot: str, text: str, mode: RedactionMode = RedactionMode.REDACTED) -> CallRecord:
    """A call whose ``slot`` carries the JSON text ``text``."""
    record = CallRecord(span_id=1, operation=sc.OP_CHAT, mode=mode, capture=True, scan=True,
                        messages=[{"role": "user", "content": "save this"}])
    assert record.messages is not None
    if slot == "message":
        record.messages = [{"role": "user", "content": text}]
    elif slot == "request_tool_arguments":
        record.messages.append({"role": "assistant", "content": None, "tool_calls": [_call(text)]})
    elif slot == "tool_result":
        record.messages.append({"role": "tool", "tool_call_id": "call_1", "content": text})
    elif slot == "response_tool_arguments":
        record.response = {"choices": [{"message": {"role": "assistant", "content": None,
                                                    "tool_calls": [_call(text)]}, "finish_reason": "tool_calls"}]}
    elif slot == "streamed_deltas":
        record.chunks = _stream(text)
    elif slot == "truncated_arguments":  # not valid JSON: the escape-aware scan of the raw text
        record.messages.append({"role": "assistant", "content": None, "tool_calls": [_call(text[:-2])]})
    else:  # pragma: no cover
        raise AssertionError(slot)
    return record


@pytest.mark.parametrize("slot", SLOTS)
@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
@pytest.mark.parametrize("kind", REDACTABLE)
def test_every_redactable_type_in_every_placement_and_slot(kind: str, placement: str, slot: str) -> None:
    text = as_json_text(PLACEMENTS[placement] + SAMPLES[kind])
    attributes = RENDERER.render(record_for(slot, text))
    assert not leaked(attributes, NEEDLES[kind]), (kind, placement, slot, attributes)
    assert kind in found_types(attributes, sc.LEANLLM_SECURITY_FINDINGS)


@pytest.mark.parametrize("slot", SLOTS)
@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
@pytest.mark.parametrize("kind", INJECTIONS)
def test_every_injection_type_is_reported_in_every_placement_and_slot(kind: str, placement: str, slot: str) -> None:
    text = as_json_text(PLACEMENTS[placement] + SAMPLES[kind])
    attributes = RENDERER.render(record_for(slot, text))
    assert kind in found_types(attributes, sc.LEANLLM_SECURITY_FINDINGS), (kind, placement, slot)


@pytest.mark.parametrize("mode", [RedactionMode.HASHED, RedactionMode.METADATA])
def test_findings_see_escaped_values_in_every_mode(mode: RedactionMode) -> None:
    text = as_json_text(PLACEMENTS["newline"] + SAMPLES["CREDIT_CARD"])
    for slot in SLOTS:
        attributes = RENDERER.render(record_for(slot, text, mode))
        assert found_types(attributes, sc.LEANLLM_SECURITY_FINDINGS) == {"CREDIT_CARD"}, slot
        assert not leaked(attributes, NEEDLES["CREDIT_CARD"])


def test_redacted_arguments_keep_their_structure() -> None:
    text = json.dumps({"note": "Customer data:\n4111 1111 1111 1111", "n": 3, "ok": True})
    attributes = RENDERER.render(record_for("request_tool_arguments", text))
    messages = json.loads(attributes[sc.GEN_AI_INPUT_MESSAGES])
    (call,) = [part for message in messages for part in message["parts"] if part["type"] == "tool_call"]
    assert call["arguments"] == {"note": "Customer data:\n[PII:CREDIT_CARD]", "n": 3, "ok": True}


def test_the_issue_shape_end_to_end(make_instrumented: Any, openai_server: Any) -> None:
    """The exact shape of the issue through LiteLLM: history tool call and tool result, and a streamed call whose
    arguments the provider sends as ``{"query": "\\n4111 1111 1111 1111"}`` (the mock echoes the prompt)."""
    inst = make_instrumented(capture_content=True, explicit_redaction_mode=RedactionMode.REDACTED)
    arguments = '{"note": "Customer data:\\n4111 1111 1111 1111"}'
    history = [
        {"role": "user", "content": "save the customer's card"},
        {"role": "assistant", "content": None, "tool_calls": [_call(arguments)]},
        {"role": "tool", "tool_call_id": "call_1", "content": arguments},
        {"role": "user", "content": "\n4111 1111 1111 1111"},
    ]
    tools = [{"type": "function", "function": {"name": "save_note", "parameters": {
        "type": "object", "properties": {"query": {"type": "string"}}}}}]
    for stream in (False, True):
        response = litellm.completion(model="openai/tools", messages=history, tools=tools, stream=stream,
                                      api_base=openai_server.base_url, api_key="sk-test")
        if stream:
            for _ in response:
                pass
    spans = inst.llm_spans()
    assert len(spans) == 2
    for span in spans:
        attributes = dict(span.attributes or {})
        assert "[PII:CREDIT_CARD]" in attributes[sc.LEANLLM_TOOL_CALLS]
        assert not leaked(attributes, "4111 1111 1111 1111"), attributes


# --- property: any JSON shape, any escape before the value, any split into stream deltas ----------------------

_PREFIX_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from(
    ["\n", "\t", "\r", '"', "\\", "/", "\uff1a", "\u3000", "é", "\x00", "\x1b"])
# A key named like a credential (``"password": ...``) makes the whole value a PASSWORD finding instead of its own
# type; the value is still removed, but this property checks the type, so keys stay neutral.
_KEYS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8).filter(
    lambda key: not is_secret_name(key)
)


@st.composite
def planted_json(draw: Any) -> tuple[str, str]:
    """(JSON text with a redactable sample at some depth, the sample's type)."""
    kind = draw(st.sampled_from(REDACTABLE))
    prefix = draw(st.text(_PREFIX_CHARS, max_size=6))
    # Keep a separator before the value: only the escape, not a letter glued to it, should stand in between.
    value: Any = prefix + draw(st.sampled_from([" ", "\n", "\uff1a", "\t", '"'])) + SAMPLES[kind]
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            value = {**draw(st.dictionaries(_KEYS, st.integers() | _KEYS, max_size=2)), draw(_KEYS): value}
        else:
            value = [draw(st.integers() | _KEYS), value]
    if not isinstance(value, (dict, list)):
        value = {"note": value}
    text = json.dumps(value, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 2])))
    return text, kind


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(planted=planted_json(), slot=st.sampled_from(SLOTS), piece=st.integers(1, 9))
def test_no_planted_value_survives_any_json_shape(planted: tuple[str, str], slot: str, piece: int) -> None:
    text, kind = planted
    record = record_for(slot, text)
    if slot == "streamed_deltas":
        record.chunks = _stream(text, piece)
    if slot == "truncated_arguments" and NEEDLES[kind] not in text[:-2]:
        return  # the cut fell inside the value; not what this property is about
    attributes = RENDERER.render(record)
    assert not leaked(attributes, NEEDLES[kind]), (text, slot)
    assert kind in found_types(attributes, sc.LEANLLM_SECURITY_FINDINGS)
