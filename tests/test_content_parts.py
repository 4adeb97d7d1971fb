"""Semconv JSON parts: messages, system instructions, tool calls / results / definitions, media, streams, size caps."""

from __future__ import annotations

import json
from typing import Any

import litellm
import pytest
from litellm.types.llms.openai import ResponsesAPIResponse
from litellm.types.utils import (
    ChatCompletionDeltaToolCall,
    Delta,
    Function,
    ModelResponseStream,
    StreamingChoices,
)

from leanllm_otel.processing.capping import encode_capped
from leanllm_otel.processing.messages import (
    chat_input,
    prompt_input,
    response_output,
    responses_input,
    stream_output,
)
from leanllm_otel.processing.parts import tool_definitions
from leanllm_otel.processing.redaction import ModePolicy
from leanllm_otel.redaction_mode import RedactionMode

PNG_B64 = "iVBORw0KGgo" + "A" * 1333  # 1344 base64 chars -> 1008 bytes


def full() -> ModePolicy:
    return ModePolicy(RedactionMode.FULL, scan=False)


def redacted() -> ModePolicy:
    from leanllm_otel.processing.detectors import default_detector

    return ModePolicy(RedactionMode.REDACTED, scan=True, detector=default_detector())


# --- input -------------------------------------------------------------------------------------------------------


def test_chat_messages_follow_the_semconv_schema() -> None:
    messages = [
        {"role": "system", "content": "Be terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
        {"role": "tool", "tool_call_id": "call_2", "content": "plain text result"},
    ]
    conv = chat_input(messages, full())

    assert conv.count == 6
    # system and developer messages are system instructions, never input messages
    assert conv.system == [
        {"type": "text", "content": "Be terse."},
        {"type": "text", "content": "Answer in French."},
    ]
    assert [m["role"] for m in conv.messages] == ["user", "assistant", "tool", "tool"]
    assert conv.messages[0]["parts"] == [{"type": "text", "content": "What is the weather in Paris?"}]
    assert conv.messages[1]["parts"] == [
        {"type": "tool_call", "id": "call_1", "name": "weather", "arguments": {"city": "Paris"}}
    ]
    assert conv.messages[2]["parts"] == [{"type": "tool_call_response", "id": "call_1", "response": {"temp": 21}}]
    assert conv.messages[3]["parts"] == [
        {"type": "tool_call_response", "id": "call_2", "response": "plain text result"}
    ]


def test_litellm_message_objects_are_read_like_dicts() -> None:
    response = litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], mock_response="hi")
    conv = chat_input([{"role": "user", "content": "q"}, response.choices[0].message], full())
    assert conv.messages[1] == {"role": "assistant", "parts": [{"type": "text", "content": "hi"}]}


def test_inline_media_keeps_type_and_size_never_the_payload() -> None:
    content = [
        {"type": "text", "text": "describe these"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "image_url", "image_url": "https://img.example.com/cat.jpg?sig=SECRETSIG#frag"},
        {"type": "input_audio", "input_audio": {"data": "UklGR" + "B" * 95, "format": "wav"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x" + "C" * 56}},
        {"type": "file", "file": {"file_id": "file-abc123"}},
        {"type": "mystery", "payload": "QUJD" * 100},
    ]
    parts = chat_input([{"role": "user", "content": content}], full()).messages[0]["parts"]

    assert parts[0] == {"type": "text", "content": "describe these"}
    assert parts[1] == {"type": "blob", "modality": "image", "mime_type": "image/png", "size": 1008}
    assert parts[2] == {
        "type": "uri",
        "modality": "image",
        "mime_type": "image/jpeg",
        "uri": "https://img.example.com/cat.jpg?sig=SECRETSIG#frag",
    }
    assert parts[3] == {"type": "blob", "modality": "audio", "mime_type": "audio/wav", "size": 75}
    assert parts[4] == {"type": "blob", "modality": "document", "mime_type": "application/pdf", "size": 48}
    assert parts[5] == {"type": "file", "modality": "document", "file_id": "file-abc123"}
    assert parts[6] == {"type": "mystery"}  # unknown part: its type only
    encoded = json.dumps(parts)
    assert "AAAA" not in encoded and "BBBB" not in encoded and "CCCC" not in encoded and "QUJD" not in encoded


def test_redacted_mode_strips_the_query_string_of_media_urls() -> None:
    content = [{"type": "image_url", "image_url": {"url": "https://u:pw@img.example.com/a.png?X-Amz-Signature=abc"}}]
    part = chat_input([{"role": "user", "content": content}], redacted()).messages[0]["parts"][0]
    assert part["uri"] == "https://img.example.com/a.png"
    # full mode keeps the query but never the user:password
    part = chat_input([{"role": "user", "content": content}], full()).messages[0]["parts"][0]
    assert part["uri"] == "https://img.example.com/a.png?X-Amz-Signature=abc"


def test_prompt_and_embedding_inputs_become_user_messages() -> None:
    conv = prompt_input(["first text", "second text"], full())
    assert conv.count == 2
    assert [m["parts"][0]["content"] for m in conv.messages] == ["first text", "second text"]
    tokens = prompt_input([101, 102, 103], full())
    assert tokens.messages == [{"role": "user", "parts": [{"type": "tokens", "count": 3}]}]


def test_responses_api_input_items() -> None:
    items = [
        {"role": "developer", "content": "dev rules"},
        {"role": "user", "content": [{"type": "input_text", "text": "hello"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"x": 1}'},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
    ]
    conv = responses_input(items, "be nice", full())
    assert conv.system == [{"type": "text", "content": "be nice"}, {"type": "text", "content": "dev rules"}]
    assert conv.messages == [
        {"role": "user", "parts": [{"type": "text", "content": "hello"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "f", "arguments": {"x": 1}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "42"}]},
    ]


# --- output ------------------------------------------------------------------------------------------------------


def test_chat_response_choices_become_output_messages_with_finish_reason() -> None:
    response = litellm.completion(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "x"}],
        mock_response="the answer",
    )
    assert response_output(response, full()) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "the answer"}], "finish_reason": "stop"}
    ]


def test_mocked_tool_calls_in_a_response() -> None:
    response = litellm.completion(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "x"}],
        mock_response="",
        mock_tool_calls=[
            {"id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "z"}'}}
        ],
    )
    parts = response_output(response, full())[0]["parts"]
    assert {"type": "tool_call", "id": "call_9", "name": "lookup", "arguments": {"q": "z"}} in parts


def test_responses_api_output() -> None:
    response = ResponsesAPIResponse(
        id="resp_1",
        created_at=0,
        output=[
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thinking..."}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hey"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"x": 1}'},
        ],
        status="completed",
        parallel_tool_calls=False,
        tool_choice="auto",
        tools=[],
    )
    assert response_output(response, full()) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": "thinking..."},
                {"type": "text", "content": "hey"},
                {"type": "tool_call", "id": "c1", "name": "f", "arguments": {"x": 1}},
            ],
            "finish_reason": "tool_call",
        }
    ]


def test_embedding_response_has_no_output_messages() -> None:
    response = litellm.embedding(model="text-embedding-3-small", input=["a"], mock_response=[0.1, 0.2])
    assert response_output(response, full()) == []


def _chunk(delta: Delta, finish: str | None = None, index: int = 0) -> ModelResponseStream:
    return ModelResponseStream(choices=[StreamingChoices(index=index, delta=delta, finish_reason=finish)])


def test_stream_text_deltas_are_joined() -> None:
    stream = litellm.completion(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], mock_response="one two three", stream=True
    )
    chunks = list(stream)
    assert len(chunks) > 1
    messages = stream_output(chunks, full())
    assert messages == [
        {"role": "assistant", "parts": [{"type": "text", "content": "one two three"}], "finish_reason": "stop"}
    ]


def test_stream_tool_call_deltas_are_assembled_by_index() -> None:
    def call(index: int, arguments: str, call_id: str | None = None, name: str | None = None) -> Any:
        return ChatCompletionDeltaToolCall(
            index=index, id=call_id, type="function", function=Function(name=name, arguments=arguments)
        )

    chunks = [
        _chunk(Delta(role="assistant", content="Let me check. ")),
        _chunk(Delta(tool_calls=[call(0, "", "call_a", "weather")])),
        _chunk(Delta(tool_calls=[call(1, "", "call_b", "time")])),
        _chunk(Delta(tool_calls=[call(0, '{"city": ')])),
        _chunk(Delta(tool_calls=[call(1, '{"tz": "UTC"}')])),
        _chunk(Delta(tool_calls=[call(0, '"Paris"}')])),
        _chunk(Delta(), finish="tool_calls"),
    ]
    assert stream_output(chunks, full()) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "Let me check. "},
                {"type": "tool_call", "id": "call_a", "name": "weather", "arguments": {"city": "Paris"}},
                {"type": "tool_call", "id": "call_b", "name": "time", "arguments": {"tz": "UTC"}},
            ],
            "finish_reason": "tool_calls",
        }
    ]


def test_stream_choices_are_kept_apart_and_unfinished_streams_have_empty_finish_reason() -> None:
    chunks = [_chunk(Delta(content="a"), index=0), _chunk(Delta(content="b"), index=1), _chunk(Delta(content="c"))]
    messages = stream_output(chunks, full())
    assert [m["parts"][0]["content"] for m in messages] == ["ac", "b"]
    assert [m["finish_reason"] for m in messages] == ["", ""]


def test_tool_definitions() -> None:
    tools = [
        {
            "type": "function",
            "function": {"name": "weather", "description": "Get weather", "parameters": {"type": "object"}},
        },
        {"name": "legacy_fn", "description": "old style", "parameters": {"type": "object"}},
        {"type": "web_search"},
    ]
    assert tool_definitions(tools, full()) == [
        {"type": "function", "name": "weather", "description": "Get weather", "parameters": {"type": "object"}},
        {"type": "function", "name": "legacy_fn", "description": "old style", "parameters": {"type": "object"}},
        {"type": "web_search", "name": "web_search"},
    ]


# --- size caps ---------------------------------------------------------------------------------------------------


def test_small_content_is_not_truncated() -> None:
    items = [{"role": "user", "parts": [{"type": "text", "content": "short"}]}]
    text, cut = encode_capped(items, 1000)
    assert not cut
    assert json.loads(text) == [{"role": "user", "parts": [{"type": "text", "content": "short"}]}]


@pytest.mark.parametrize("cap", [1000, 4096, 8000])
def test_the_longest_parts_are_cut_inside_the_json(cap: int) -> None:
    items = [
        {"role": "user", "parts": [{"type": "text", "content": "keep me"}]},
        {"role": "user", "parts": [{"type": "text", "content": "x" * 50_000}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "c", "name": "f", "arguments": {"k": "y" * 9000}}]},
        {"role": "user", "parts": [{"type": "text", "content": 'quote " and \\ and \n newline ' * 400}]},
    ]
    text, cut = encode_capped(items, cap)
    assert cut
    assert len(text) <= cap
    decoded = json.loads(text)  # always valid JSON
    assert decoded[0]["parts"][0] == {"type": "text", "content": "keep me"}  # short parts untouched
    assert decoded[1]["parts"][0]["truncated"] is True
    assert decoded[1]["parts"][0]["content"].startswith("xxx")
    assert decoded[2]["parts"][0]["truncated"] is True


def test_a_tiny_cap_still_gives_valid_json_within_the_cap() -> None:
    items = [{"role": "user", "parts": [{"type": "text", "content": c * 5000}]} for c in "abcdef"]
    text, cut = encode_capped(items, 256)
    assert cut
    assert len(text) <= 256
    assert isinstance(json.loads(text), list)


def test_many_small_parts_drop_the_oldest_messages() -> None:
    items = [{"role": "user", "parts": [{"type": "text", "content": f"m{i}"}]} for i in range(500)]
    text, cut = encode_capped(items, 300)
    assert cut
    assert len(text) <= 300
    decoded = json.loads(text)
    assert decoded and decoded[-1]["parts"][0]["content"] == "m499"  # the most recent survive


def test_non_ascii_and_lone_surrogates_stay_encodable() -> None:
    items = [{"role": "user", "parts": [{"type": "text", "content": "héllo \ud800 wörld " * 100}]}]
    text, _ = encode_capped(items, 500)
    text.encode("utf-8")  # no lone surrogate survives
    assert len(text) <= 500
    assert json.loads(text)[0]["parts"][0]["content"].startswith("héllo \ufffd")


def test_free_text_in_type_and_name_fields_goes_through_the_policy() -> None:
    content = [{"type": "note to bob@example.com", "text": "x"}]
    assert chat_input([{"role": "user", "content": content}], full()).messages[0]["parts"] == [{"type": "unknown"}]
    tools = [{"type": "function", "function": {"name": "mail bob@example.com"}}]
    assert tool_definitions(tools, redacted()) == [{"type": "function", "name": "mail [PII:EMAIL]"}]
    assert tool_definitions([{"type": "function", "function": {"name": "get_weather"}}], redacted())[0]["name"] == (
        "get_weather"
    )
