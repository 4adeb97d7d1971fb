"""Call paths beyond chat / text / embeddings: images, speech, transcription, rerank, the Anthropic messages
interface, and the Responses API's output items; each over the loopback provider, sync and async.

Each test checks the span contract (operation, model, provider, server, output type, usage, cost from LiteLLM),
the content parts in ``full`` mode, and the ``LLMEvent`` the one mapping (``span_to_event``) makes of the span.
"""

from __future__ import annotations

import json
from typing import Any

import litellm
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from leanllm_otel import RedactionMode
from leanllm_otel import semconv as sc
from leanllm_otel.event import span_to_event
from loopback.openai_media import image_bytes, speech_bytes


@pytest.fixture
def full(make_instrumented: Any) -> Any:
    return make_instrumented(capture_content=True, explicit_redaction_mode=RedactionMode.FULL)


async def _call(mode: str, sync: Any, asynchronous: Any, **kwargs: Any) -> Any:
    return sync(**kwargs) if mode == "sync" else await asynchronous(**kwargs)


def _messages(span: Any, attribute: str) -> list[dict[str, Any]]:
    value = span.attributes.get(attribute)
    return json.loads(value) if value else []


def _parts(span: Any, attribute: str) -> list[dict[str, Any]]:
    return [part for message in _messages(span, attribute) for part in message["parts"]]


def _common(span: Any, operation: str, model: str, provider: str, server: Any) -> dict[str, Any]:
    attrs = dict(span.attributes)
    assert span.name == f"{operation} {model}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert attrs[sc.GEN_AI_OPERATION_NAME] == operation
    assert attrs[sc.GEN_AI_REQUEST_MODEL] == model
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == provider
    assert attrs[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[sc.SERVER_PORT] == server.port
    event = span_to_event(span)
    assert (event.operation, event.model, event.provider, event.status) == (operation, model, provider, "ok")
    assert event.input_tokens == attrs.get(sc.GEN_AI_USAGE_INPUT_TOKENS)
    assert event.cost == attrs.get(sc.LEANLLM_COST_USD)
    return attrs


def _assert_cost(attrs: dict[str, Any], response: Any) -> None:
    """The cost LiteLLM computed for the response, or none when LiteLLM's bundled price map has no price for it
    (LiteLLM 1.108's map dropped ``dall-e-3``): never a guess."""
    expected = response._hidden_params.get("response_cost")
    if expected is None:
        assert sc.LEANLLM_COST_USD not in attrs
    else:
        assert attrs[sc.LEANLLM_COST_USD] == pytest.approx(expected)


MODES = ["sync", "async"]


@pytest.mark.parametrize("mode", MODES)
async def test_image_generation_urls(full: Any, openai_server: Any, mode: str) -> None:
    response = await _call(mode, litellm.image_generation, litellm.aimage_generation, prompt="a red cat", n=2,
                           model="openai/dall-e-3", api_base=openai_server.base_url, api_key="sk-test")
    span = full.one_llm_span()
    attrs = _common(span, "generate_content", "dall-e-3", "openai", openai_server)
    assert attrs[sc.GEN_AI_OUTPUT_TYPE] == "image"
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == 3 and attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 20
    _assert_cost(attrs, response)
    assert _parts(span, sc.GEN_AI_INPUT_MESSAGES) == [{"type": "text", "content": "a red cat"}]
    output = _parts(span, sc.GEN_AI_OUTPUT_MESSAGES)
    assert [p["type"] for p in output] == ["uri", "text", "uri", "text"]
    assert output[0] == {"type": "uri", "modality": "image", "mime_type": "image/png",
                         "uri": "https://images.example.test/0.png"}
    assert output[1]["content"] == "revised: a red cat"
    assert len(openai_server.requests_to("/images/generations")) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_image_generation_base64_is_a_sized_blob(full: Any, openai_server: Any, mode: str) -> None:
    response = await _call(mode, litellm.image_generation, litellm.aimage_generation, prompt="a red cat",
                           model="openai/gpt-image-1",
                           api_base=openai_server.base_url, api_key="sk-test")
    span = full.one_llm_span()
    image = _parts(span, sc.GEN_AI_OUTPUT_MESSAGES)[0]
    assert image == {"type": "blob", "modality": "image", "mime_type": "image/png",
                     "size": len(image_bytes("a red cat", 0))}
    assert response.data[0].b64_json not in repr(dict(span.attributes))  # the payload never leaves


@pytest.mark.parametrize("mode", MODES)
async def test_speech(full: Any, openai_server: Any, mode: str) -> None:
    text = "hello there, this is speech"
    response = await _call(mode, litellm.speech, litellm.aspeech, model="openai/tts-1", input=text, voice="alloy",
                           api_base=openai_server.base_url, api_key="sk-test")
    assert response.content == speech_bytes(text)
    span = full.one_llm_span()
    attrs = _common(span, "generate_content", "tts-1", "openai", openai_server)
    assert attrs[sc.GEN_AI_OUTPUT_TYPE] == "speech"
    _assert_cost(attrs, response)
    assert _parts(span, sc.GEN_AI_INPUT_MESSAGES) == [{"type": "text", "content": text}]
    assert _parts(span, sc.GEN_AI_OUTPUT_MESSAGES) == [{"type": "blob", "modality": "audio",
                                                        "size": len(speech_bytes(text))}]


@pytest.mark.parametrize("mode", MODES)
async def test_transcription(full: Any, openai_server: Any, mode: str) -> None:
    audio = b"RIFF" + b"\x00" * 300
    response = await _call(mode, litellm.transcription, litellm.atranscription, model="openai/whisper-1",
                           file=("meeting.wav", audio), api_base=openai_server.base_url, api_key="sk-test")
    assert response.text == "transcript of 304 bytes"
    span = full.one_llm_span()
    attrs = _common(span, "generate_content", "whisper-1", "openai", openai_server)
    assert attrs[sc.GEN_AI_OUTPUT_TYPE] == "text"
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == 4 and attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 4
    assert _parts(span, sc.GEN_AI_INPUT_MESSAGES) == [{"type": "blob", "modality": "audio",
                                                       "mime_type": "audio/wav", "size": 304}]
    assert _parts(span, sc.GEN_AI_OUTPUT_MESSAGES) == [{"type": "text", "content": "transcript of 304 bytes"}]


@pytest.mark.parametrize("mode", MODES)
async def test_rerank(full: Any, openai_server: Any, mode: str) -> None:
    documents = ["a red cat", "a blue dog", "cat"]
    # LiteLLM's cohere rerank appends its own version path to api_base.
    response = await _call(mode, litellm.rerank, litellm.arerank, model="cohere/rerank-english-v3.0",
                           query="red cat", documents=documents, top_n=2, api_base=openai_server.url,
                           api_key="sk-test")
    assert [r["index"] for r in response.results] == [0, 2]
    span = full.one_llm_span()
    attrs = _common(span, "retrieval", "rerank-english-v3.0", "cohere", openai_server)
    assert attrs[sc.GEN_AI_RESPONSE_ID] == response.id
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == 9
    _assert_cost(attrs, response)
    texts = [p["content"] for p in _parts(span, sc.GEN_AI_INPUT_MESSAGES)]
    assert texts == ["red cat", *documents]
    assert sc.GEN_AI_OUTPUT_MESSAGES not in attrs  # scores are not content


@pytest.mark.parametrize("mode", MODES)
async def test_anthropic_messages_interface(full: Any, openai_server: Any, mode: str) -> None:
    response = await _call(
        mode, litellm.anthropic.messages.create, litellm.anthropic.messages.acreate,
        model="openai/gpt-4o-mini", max_tokens=64, system="be brief",
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi there"}]}],
        api_base=openai_server.base_url, api_key="sk-test",
    )
    block = response["content"][0]  # a dict, or (LiteLLM 1.80) a pydantic block inside the dict
    assert (block["text"] if isinstance(block, dict) else block.text) == "echo: hi there"
    span = full.one_llm_span()
    assert len(full.all_llm_spans()) == 1  # LiteLLM's own inner chat / Responses call stays inside this span
    attrs = _common(span, "chat", "gpt-4o-mini", "openai", openai_server)
    assert list(attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS]) == ["end_turn"]
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == response["usage"]["input_tokens"]
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == response["usage"]["output_tokens"]
    assert attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert _messages(span, sc.GEN_AI_SYSTEM_INSTRUCTIONS) == [{"type": "text", "content": "be brief"}]
    assert _messages(span, sc.GEN_AI_OUTPUT_MESSAGES) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "echo: hi there"}], "finish_reason": "stop"}
    ]


def test_anthropic_tool_blocks_become_tool_parts(full: Any, openai_server: Any) -> None:
    """Anthropic-style ``tool_use`` / ``tool_result`` blocks in the history become tool_call parts."""
    litellm.anthropic.messages.create(
        model="openai/gpt-4o-mini", max_tokens=64, api_base=openai_server.base_url, api_key="sk-test",
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "weather",
                                               "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]},
        ],
    )
    history = _messages(full.one_llm_span(), sc.GEN_AI_INPUT_MESSAGES)
    assert history[1]["parts"] == [{"type": "tool_call", "id": "toolu_1", "name": "weather",
                                    "arguments": {"city": "Paris"}}]
    assert history[2]["parts"] == [{"type": "tool_call_response", "id": "toolu_1", "response": "sunny"}]


LOOKUP = [{"type": "function", "name": "lookup",
           "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}]


@pytest.mark.parametrize("mode", MODES)
async def test_responses_output_items_become_output_parts(full: Any, openai_server: Any, mode: str) -> None:
    response = await _call(mode, litellm.responses, litellm.aresponses, model="openai/tools-2-reasoning-3",
                           input="what is up", tools=LOOKUP, api_base=openai_server.base_url, api_key="sk-test")
    assert [item.type for item in response.output] == ["reasoning", "function_call", "function_call", "message"]
    span = full.one_llm_span()
    (message,) = _messages(span, sc.GEN_AI_OUTPUT_MESSAGES)
    assert message["finish_reason"] == "tool_call"
    assert message["parts"] == [
        {"type": "reasoning", "content": "thinking about: what is up"},
        {"type": "tool_call", "id": "call_0", "name": "lookup", "arguments": {"query": "what is up"}},
        {"type": "tool_call", "id": "call_1", "name": "lookup", "arguments": {"query": "what is up"}},
        {"type": "text", "content": response.output[-1].content[0].text},
    ]
    assert span.attributes[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 3
    assert span_to_event(span).output_messages == [message]


async def test_responses_stream_output_items(full: Any, openai_server: Any) -> None:
    stream = await litellm.aresponses(model="openai/tools-1-reasoning-2", input="stream it", tools=LOOKUP,
                                      stream=True, api_base=openai_server.base_url, api_key="sk-test")
    async for _ in stream:
        pass
    span = full.one_llm_span()
    assert span.attributes[sc.LEANLLM_STREAM_OUTCOME] == sc.STREAM_COMPLETED
    types = [p["type"] for p in _parts(span, sc.GEN_AI_OUTPUT_MESSAGES)]
    assert types == ["reasoning", "tool_call", "text"]
