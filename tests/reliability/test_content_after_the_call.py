"""Issue 19, item 4: an event records what was sent at call time, never content written after its call returned.

Content is rendered on the batch thread, later. It used to be rendered from a shallow snapshot of ``messages``, so
an application that edited a message dict after the call (a shared ``history`` list) exported the new text under
the earlier event's mode, even when the later call ran under ``use_context(log=False)``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import litellm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider

import leanllm_otel
from leanllm_otel import semconv as sc
from leanllm_otel.processing.content import ContentRenderer
from leanllm_otel.processing.record import CallRecord
from leanllm_otel.redaction_mode import RedactionMode
from leanllm_otel.settings import TelemetrySettings
from service_helpers import read_rows

from .helpers import CollectingExporter

LATER = "LATER-SECRET-CONTENT"


def _pipeline(tmp_path: Path, memory: CollectingExporter) -> tuple[Any, TracerProvider]:
    provider = TracerProvider()
    # A long flush interval: nothing is exported (or rendered) before force_flush, so the mutations below always
    # happen between the call and the rendering of its event.
    pipe = leanllm_otel.configure(tracer_provider=provider, database_url=f"sqlite:///{tmp_path / 'e.db'}",
                                  otlp=False, exporters=[memory], capture_content=True, redaction_mode="full",
                                  flush_interval_ms=3_600_000)
    return pipe, provider


def test_the_issue_shape_a_log_false_call_after_mutating_history(tmp_path: Path) -> None:
    memory = CollectingExporter()
    pipe, provider = _pipeline(tmp_path, memory)
    try:
        history = [{"role": "user", "content": "harmless first prompt"}]
        litellm.completion(model="gpt-4o-mini", messages=history, mock_response="ok")
        history[0]["content"] = LATER
        with leanllm_otel.use_context(log=False):
            litellm.completion(model="gpt-4o-mini", messages=history, mock_response="ok")
        assert pipe.force_flush(20_000)
    finally:
        pipe.shutdown()
        provider.shutdown()
    rows = list(read_rows(f"sqlite:///{tmp_path / 'e.db'}").values())
    assert len(rows) == 1
    assert "harmless first prompt" in json.dumps(rows[0]["input_messages"])
    assert LATER not in repr(rows) and LATER not in repr([dict(s.attributes or {}) for s in memory.spans])


def test_mutating_messages_tool_arguments_parts_and_the_response_after_the_call(tmp_path: Path) -> None:
    memory = CollectingExporter()
    pipe, provider = _pipeline(tmp_path, memory)
    image = {"type": "image_url", "image_url": {"url": "https://img.example/cat.png"}}
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "what is this?"}, image]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "look", "arguments": '{"q": "cat"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
    ]
    tools = [{"type": "function", "function": {"name": "look", "description": "looks", "parameters": {}}}]
    try:
        response = litellm.completion(model="gpt-4o-mini", messages=messages, tools=tools, mock_response="a cat")
        messages[0]["content"] = LATER
        messages[1]["content"][0]["text"] = LATER
        image["image_url"]["url"] = f"https://img.example/{LATER}.png"
        messages[2]["tool_calls"][0]["function"]["arguments"] = json.dumps({"q": LATER})
        messages[3]["content"] = LATER
        messages.append({"role": "user", "content": LATER})
        tools[0]["function"]["description"] = LATER
        response.choices[0].message.content = LATER
        assert pipe.force_flush(20_000)
    finally:
        pipe.shutdown()
        provider.shutdown()
    (row,) = read_rows(f"sqlite:///{tmp_path / 'e.db'}").values()
    assert LATER not in repr(row)
    text = json.dumps([row["system_instructions"], row["input_messages"], row["output_messages"],
                       row["tool_definitions"]])
    for original in ("be brief", "what is this?", "cat.png", '"q": "cat"', "a cat", "looks"):
        assert original in text, original
    assert row["input_message_count"] == 4


# --- property: any structure, any mutation after the call ------------------------------------------------------

_TEXT = st.text(max_size=12)
_LEAF = _TEXT | st.integers() | st.booleans() | st.none()


@st.composite
def message_lists(draw: Any) -> list[Any]:
    messages: list[Any] = []
    for _ in range(draw(st.integers(1, 4))):
        role = draw(st.sampled_from(["system", "user", "assistant", "tool"]))
        message: dict[str, Any] = {"role": role}
        shape = draw(st.sampled_from(["text", "parts", "tool_calls"]))
        if shape == "text":
            message["content"] = draw(_TEXT)
        elif shape == "parts":
            message["content"] = [
                draw(st.sampled_from([
                    {"type": "text", "text": draw(_TEXT)},
                    {"type": "image_url", "image_url": {"url": "https://x.example/" + draw(_TEXT)}},
                    {"type": "input_audio", "input_audio": {"data": "QUJD", "format": "wav"}},
                ])) for _ in range(draw(st.integers(0, 3)))
            ]
        else:
            arguments = draw(st.dictionaries(_TEXT, st.recursive(_LEAF, lambda c: st.lists(c, max_size=3)
                                                                 | st.dictionaries(_TEXT, c, max_size=3),
                                                                 max_leaves=8), max_size=3))
            message["content"] = None
            message["tool_calls"] = [{"id": "c", "type": "function",
                                      "function": {"name": "f", "arguments": draw(st.sampled_from(
                                          [json.dumps(arguments), arguments]))}}]
        messages.append(message)
    return messages


def _containers(value: Any, out: list[Any]) -> list[Any]:
    if isinstance(value, (dict, list)):
        out.append(value)
        for item in value.values() if isinstance(value, dict) else value:
            _containers(item, out)
    return out


RENDERER = ContentRenderer(TelemetrySettings(capture_content=True), hash_key=b"k")


def _render(messages: list[Any]) -> dict[str, Any]:
    return RENDERER.render(CallRecord(span_id=1, operation=sc.OP_CHAT, mode=RedactionMode.FULL, capture=True,
                                      scan=False, messages=messages))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=message_lists(), data=st.data())
def test_no_mutation_after_the_call_changes_the_event(messages: list[Any], data: Any) -> None:
    sent = copy.deepcopy(messages)
    record = CallRecord(span_id=1, operation=sc.OP_CHAT, mode=RedactionMode.FULL, capture=True, scan=False,
                        messages=list(messages))
    record.seal()  # what Invocation does when the call ends
    for _ in range(data.draw(st.integers(1, 6))):
        containers = _containers(messages, [])
        target = data.draw(st.sampled_from(containers))
        if isinstance(target, dict):
            op = data.draw(st.sampled_from(["set", "delete", "clear"]))
            if op == "set" or not target:
                target[data.draw(st.sampled_from([*target, "content", "text"]))] = LATER
            elif op == "delete":
                del target[data.draw(st.sampled_from(sorted(target, key=str)))]
            else:
                target.clear()
        else:
            op = data.draw(st.sampled_from(["append", "set", "clear"]))
            if op == "set" and target:
                target[data.draw(st.integers(0, len(target) - 1))] = LATER
            elif op == "clear":
                target.clear()
            else:
                target.append({"role": "user", "content": LATER})
    assert RENDERER.render(record) == _render(sent)


def _litellm_responses() -> list[Any]:
    """Real LiteLLM response objects of every shape the part conversion reads."""
    tool_call = {"id": "c1", "type": "function", "function": {"name": "look", "arguments": '{"q": "cat"}'}}
    chat = litellm.ModelResponse(choices=[{"finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "looking", "tool_calls": [tool_call], "reasoning_content": "think"}}])
    text = litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], mock_response="hey")
    return [chat, text]


def test_a_frozen_response_renders_as_the_live_one() -> None:
    """The copy made at call end keeps every field the rendering reads (pydantic fields and extras alike)."""
    from leanllm_otel.processing.record import freeze

    for response in _litellm_responses():
        live = CallRecord(span_id=1, operation=sc.OP_CHAT, mode=RedactionMode.FULL, capture=True, scan=False,
                          messages=[{"role": "user", "content": "hi"}], response=response)
        frozen = CallRecord(span_id=1, operation=sc.OP_CHAT, mode=RedactionMode.FULL, capture=True, scan=False,
                            messages=[{"role": "user", "content": "hi"}], response=freeze(response))
        rendered = RENDERER.render(frozen)
        assert rendered == RENDERER.render(live)
        assert rendered[sc.LEANLLM_OUTPUT_CHARS] > 0
