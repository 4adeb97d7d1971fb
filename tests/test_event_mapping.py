"""``event.span_to_event`` on real exported spans gives the right ``LLMEvent`` fields."""

from __future__ import annotations

from typing import Any

import litellm
import pytest

from leanllm_otel import CallOptions, LeanLLMContext, use_call_options, use_context
from leanllm_otel import semconv as sc
from leanllm_otel.event import is_llm_span_attributes, span_to_event

MESSAGES = [{"role": "user", "content": "hello event"}]


def test_success_over_http(make_instrumented: Any, openai_server: Any) -> None:
    inst = make_instrumented(environment="prod")
    with inst.tracer.start_as_current_span("handler") as parent, use_context(
        LeanLLMContext(user_id="u-7", feature="faq", custom_tags={"tier": "gold"}, labels={"team": "core"})
    ), use_call_options(CallOptions(request_id="evt-1", correlation_id="corr-1", parent_request_id="evt-0")):
        response = litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, temperature=0.5,
                                      api_base=openai_server.base_url, api_key="sk-test",
                                      extra_headers={"X-Mock-Behaviour": "cached-2 reasoning-1"})
    span = inst.one_llm_span()
    event = span_to_event(span)

    assert event.event_id == event.request_id == "evt-1"
    assert event.trace_id == format(parent.get_span_context().trace_id, "032x")
    assert event.span_id == format(span.context.span_id, "016x")
    assert event.parent_span_id == format(parent.get_span_context().span_id, "016x")
    assert event.timestamp.timestamp() == pytest.approx(span.start_time / 1e9)
    assert event.end_timestamp is not None and event.end_timestamp >= event.timestamp
    assert event.operation == "chat"
    assert event.provider == "openai"
    assert event.model == "gpt-4o-mini"
    assert event.response_model == response.model
    assert event.response_id == response.id
    assert event.finish_reasons == ["stop"]
    assert event.server_address == "127.0.0.1"
    assert event.server_port == int(openai_server.base_url.rsplit(":", 1)[1].split("/")[0])
    assert event.input_tokens == response.usage.prompt_tokens
    assert event.output_tokens == response.usage.completion_tokens
    assert event.total_tokens == response.usage.total_tokens
    assert event.cache_read_input_tokens == 2
    assert event.reasoning_tokens == 1
    assert event.usage_reported is True
    assert event.cost == pytest.approx(litellm.completion_cost(completion_response=response))
    assert event.latency_ms is not None and event.latency_ms > 0
    assert event.stream is False
    assert event.labels == {"team": "core"}
    assert event.metadata == {"environment": "prod", "user_id": "u-7", "feature": "faq",
                              "custom_tags": {"tier": "gold"}}
    assert event.environment == "prod"
    assert event.correlation_id == "corr-1"
    assert event.parent_request_id == "evt-0"
    assert event.status == "ok" and not event.is_error
    assert event.error_type is None and event.error_kind is None
    assert event.redaction_mode == "metadata"
    assert event.sampling_rate == 1.0
    assert event.input_message_count == 1
    payload = event.to_payload()
    assert payload["event_id"] == "evt-1"


def test_error_event(instrumented: Any) -> None:
    with pytest.raises(litellm.ContextWindowExceededError):
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES,
                           mock_response=litellm.ContextWindowExceededError("too long", model="gpt-4o-mini",
                                                                            llm_provider="openai"))
    event = span_to_event(instrumented.one_llm_span())
    assert event.status == "error" and event.is_error
    assert event.error_type == "ContextWindowExceededError"
    assert event.error_kind == "context_window"
    assert event.input_tokens is None
    assert event.parent_span_id is None


async def test_stream_event(instrumented: Any, openai_server: Any) -> None:
    stream = await litellm.acompletion(model="openai/gpt-4o-mini", messages=MESSAGES, stream=True,
                                       api_base=openai_server.base_url, api_key="sk-test")
    chunks = [c async for c in stream]
    event = span_to_event(instrumented.one_llm_span())
    assert event.stream is True
    assert event.stream_outcome == "completed"
    assert event.stream_chunks == len(chunks)
    assert event.time_to_first_token_ms is not None and event.time_to_first_token_ms > 0
    assert event.total_stream_time_ms is not None and event.total_stream_time_ms >= event.time_to_first_token_ms
    assert event.usage_reported is False
    assert event.input_tokens is None
    assert event.response_id == chunks[0].id


def test_embedding_event(instrumented: Any, openai_server: Any) -> None:
    litellm.embedding(model="openai/text-embedding-3-small", input=["one two"], api_base=openai_server.base_url,
                      api_key="sk-test")
    event = span_to_event(instrumented.one_llm_span())
    assert event.operation == "embeddings"
    assert event.model == "text-embedding-3-small"
    assert event.input_tokens == 2


def test_only_llm_spans_are_events(instrumented: Any) -> None:
    with instrumented.tracer.start_as_current_span("plain"):
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="ok")
    kinds = sorted((s.name, is_llm_span_attributes(s.attributes)) for s in instrumented.spans())
    assert kinds == [("chat gpt-4o-mini", True), ("plain", False)]


def test_span_row_values_over_defaults_are_the_same_row_as_span_to_event(make_instrumented: Any) -> None:
    from leanllm_otel.event import row_defaults, span_row_values, span_to_event

    def span_to_row(span: Any) -> dict[str, Any]:  # what the SQL exporter's prepared insert writes
        return {**row_defaults(), **span_row_values(span)}

    inst = make_instrumented(capture_content=True)
    with use_context(user_id="u1", labels={"team": "a"}, custom_tags={"tier": "gold"}):
        litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                           mock_response="hello", temperature=0.3, max_tokens=12)
    with pytest.raises(litellm.RateLimitError):
        litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                           mock_response=litellm.RateLimitError("slow", "openai", "gpt-4o-mini"))
    spans = inst.llm_spans()
    assert len(spans) == 2
    for span in spans:
        assert span_to_row(span) == span_to_event(span).to_row()
    assert span_to_row(spans[0])["parameters"] == {"temperature": 0.3, "max_tokens": 12}


def test_spans_sharing_their_keys_map_each_by_its_own_value_types() -> None:
    # The mapping works out what to do once per set of keys; values of other types must still be coerced per span.
    from leanllm_otel.event import event_from_attributes

    def attributes(port: Any, tokens: Any, label: Any, response_model: Any) -> dict[str, Any]:
        return {
            sc.LEANLLM_REQUEST_ID: "evt-1", sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "m",
            sc.SERVER_PORT: port, sc.GEN_AI_USAGE_INPUT_TOKENS: tokens, sc.GEN_AI_RESPONSE_MODEL: response_model,
            sc.LEANLLM_LABEL_PREFIX + "team": label, sc.LEANLLM_TAG_PREFIX + "t": "x",
            sc.GEN_AI_REQUEST_TEMPERATURE: 0.5, sc.LEANLLM_ENVIRONMENT: "prod",
        }

    typed = event_from_attributes(attributes(8080, 12, "a", "m-1"), start_time_ns=1)
    coerced = event_from_attributes(attributes("8081", "13", 5, None), start_time_ns=1)
    unusable = event_from_attributes(attributes("port", None, "b", "m-2"), start_time_ns=1)
    assert (typed.server_port, typed.input_tokens, typed.labels) == (8080, 12, {"team": "a"})
    assert typed.response_model == "m-1"
    assert (coerced.server_port, coerced.input_tokens, coerced.labels) == (8081, 13, {"team": "5"})
    assert coerced.response_model is None
    assert (unusable.server_port, unusable.input_tokens, unusable.response_model) == (None, None, "m-2")
    for event in (typed, coerced, unusable):
        assert event.parameters == {"temperature": 0.5}
        assert event.metadata == {"environment": "prod", "custom_tags": {"t": "x"}}
    reordered = dict(reversed(list(attributes(8080, 12, "a", "m-1").items())))
    assert event_from_attributes(reordered, start_time_ns=1) == typed


@pytest.mark.parametrize(
    "text",
    ['{"EMAIL": 2}', ' {"EMAIL": 2}\n', '{"EMAIL": 2} trailing', '{"EMAIL": 2}{}', "\ufeff{}", "{not json", "", "[1]"],
)
def test_json_attributes_decode_exactly_as_json_loads_does(text: str) -> None:
    # The mapping's fast decoder must accept and refuse the same texts as json.loads (whitespace around, trailing
    # text, a BOM, invalid JSON): what it cannot decode is kept as {"_unparsed": text}.
    import json

    from leanllm_otel.event import event_from_attributes

    try:
        expected: Any = json.loads(text)
    except ValueError:
        expected = {"_unparsed": text}
    attributes = {
        sc.LEANLLM_REQUEST_ID: "evt-1", sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "m",
        sc.GEN_AI_INPUT_MESSAGES: text,
    }  # fmt: skip
    assert event_from_attributes(attributes, start_time_ns=1).input_messages == expected
