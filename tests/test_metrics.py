"""GenAI client metrics: duration (failures too), token usage by type, time to first chunk; bounded attributes."""

from __future__ import annotations

from typing import Any

import litellm
import pytest

from leanllm_otel import CallOptions, use_call_options, use_context
from leanllm_otel import semconv as sc

MESSAGES = [{"role": "user", "content": "hi"}]

# The only attribute keys a metric point may carry (bounded cardinality: no ids, no free text).
ALLOWED_KEYS = {
    sc.GEN_AI_OPERATION_NAME,
    sc.GEN_AI_PROVIDER_NAME,
    sc.GEN_AI_REQUEST_MODEL,
    sc.GEN_AI_RESPONSE_MODEL,
    sc.SERVER_ADDRESS,
    sc.SERVER_PORT,
    sc.ERROR_TYPE,
    sc.GEN_AI_TOKEN_TYPE,
}


def test_duration_and_tokens_for_a_successful_call(instrumented: Any, openai_server: Any) -> None:
    response = litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, api_base=openai_server.base_url,
                                  api_key="sk-test")
    (duration,) = instrumented.metric_points(sc.METRIC_OPERATION_DURATION)
    assert duration.count == 1
    assert duration.sum > 0
    assert duration.attributes[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert duration.attributes[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert duration.attributes[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert duration.attributes[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert sc.ERROR_TYPE not in duration.attributes

    tokens = {p.attributes[sc.GEN_AI_TOKEN_TYPE]: p for p in instrumented.metric_points(sc.METRIC_TOKEN_USAGE)}
    assert set(tokens) == {"input", "output"}
    assert tokens["input"].sum == response.usage.prompt_tokens
    assert tokens["output"].sum == response.usage.completion_tokens
    assert instrumented.metric_points(sc.METRIC_TIME_TO_FIRST_CHUNK) == []


async def test_failures_are_counted_with_error_type(instrumented: Any, openai_server: Any) -> None:
    kwargs = {"model": "openai/err-429", "messages": MESSAGES, "api_base": openai_server.base_url,
              "api_key": "sk-test", "max_retries": 0}
    with pytest.raises(litellm.RateLimitError):
        litellm.completion(**kwargs)
    with pytest.raises(litellm.RateLimitError):
        await litellm.acompletion(**kwargs)
    litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="ok")
    points = instrumented.metric_points(sc.METRIC_OPERATION_DURATION)
    failed = [p for p in points if p.attributes.get(sc.ERROR_TYPE) == "RateLimitError"]
    ok = [p for p in points if sc.ERROR_TYPE not in p.attributes]
    assert sum(p.count for p in failed) == 2
    assert sum(p.count for p in ok) == 1
    # A failed call reports no tokens.
    assert sum(p.count for p in instrumented.metric_points(sc.METRIC_TOKEN_USAGE)) == 2  # input + output of the ok


def test_metrics_are_recorded_even_for_sampled_out_calls(make_instrumented: Any) -> None:
    inst = make_instrumented(sampling_rate=0.0)
    for _ in range(3):
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="ok")
    assert inst.llm_spans() == []
    (duration,) = inst.metric_points(sc.METRIC_OPERATION_DURATION)
    assert duration.count == 3


def test_only_bounded_attributes(instrumented: Any, openai_server: Any) -> None:
    with use_context(user_id="user-123", session_id="sess-9", labels={"x": "y"}, correlation_id="corr-7"), \
            use_call_options(CallOptions(request_id="req-unique-42")):
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="ok", temperature=0.3)
        list(litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, api_base=openai_server.base_url,
                                api_key="sk-test", stream=True, stream_options={"include_usage": True}))
    with pytest.raises(litellm.BadRequestError):
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES,
                           mock_response=litellm.BadRequestError("free text", model="gpt-4o-mini",
                                                                 llm_provider="openai"))
    names = (sc.METRIC_OPERATION_DURATION, sc.METRIC_TOKEN_USAGE, sc.METRIC_TIME_TO_FIRST_CHUNK)
    points = [p for name in names for p in instrumented.metric_points(name)]
    assert len(points) >= 5
    for point in points:
        assert set(point.attributes) <= ALLOWED_KEYS, point.attributes
        values = " ".join(str(v) for v in point.attributes.values())
        for forbidden in ("user-123", "sess-9", "corr-7", "req-unique-42", "free text"):
            assert forbidden not in values
    assert len(instrumented.metric_points(sc.METRIC_TIME_TO_FIRST_CHUNK)) == 1


def test_log_false_records_no_metrics(instrumented: Any) -> None:
    with use_call_options(CallOptions(log=False)):
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="ok")
    assert instrumented.metric_points(sc.METRIC_OPERATION_DURATION) == []


async def test_async_embedding_token_metric(instrumented: Any, openai_server: Any) -> None:
    await litellm.aembedding(model="openai/text-embedding-3-small", input=["a b c"], api_base=openai_server.base_url,
                             api_key="sk-test")
    tokens = {p.attributes[sc.GEN_AI_TOKEN_TYPE]: p for p in instrumented.metric_points(sc.METRIC_TOKEN_USAGE)}
    assert tokens["input"].sum == 3
    assert tokens["input"].attributes[sc.GEN_AI_OPERATION_NAME] == "embeddings"
    # LiteLLM's embedding Usage always carries completion_tokens=0, so a zero "output" point appears too.
    assert tokens.get("output") is None or tokens["output"].sum == 0
