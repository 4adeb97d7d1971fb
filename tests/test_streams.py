"""Streams: LiteLLM's stream type is kept, the span ends exactly once, and says how the stream ended."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import litellm
import pytest
from opentelemetry.trace import StatusCode

from leanllm_otel import semconv as sc
from support.litellm_behaviour import ASYNC_STREAM_BREAK_IS_SILENT

MESSAGES = [{"role": "user", "content": "tell me a story please"}]


def _kwargs(server: Any, model: str, **extra: Any) -> dict[str, Any]:
    return {"model": f"openai/{model}", "messages": MESSAGES, "api_base": server.base_url, "api_key": "sk-test",
            "stream": True, "max_retries": 0, **extra}


def _open_sync(server: Any, model: str = "gpt-4o-mini-chunks-4", **extra: Any) -> Any:
    return litellm.completion(**_kwargs(server, model, **extra))


async def _open_async(server: Any, model: str = "gpt-4o-mini-chunks-4", **extra: Any) -> Any:
    return await litellm.acompletion(**_kwargs(server, model, **extra))


def _only_span(inst: Any) -> Any:
    """The one LLM span that ended (checked on the raw provider output), as the exporter received it."""
    spans = inst.all_llm_spans()
    assert len(spans) == 1, [dict(s.attributes) for s in spans]
    return inst.one_llm_span()


def _assert_no_tokens(attrs: dict[str, Any]) -> None:
    assert attrs[sc.LEANLLM_USAGE_REPORTED] is False
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in attrs
    assert sc.GEN_AI_USAGE_OUTPUT_TOKENS not in attrs


# --- type ---------------------------------------------------------------------------------------------------


def test_stream_keeps_litellms_type_sync(instrumented: Any, openai_server: Any) -> None:
    stream = _open_sync(openai_server)
    assert isinstance(stream, litellm.CustomStreamWrapper)
    assert stream.model  # attributes reach the wrapped object
    list(stream)


async def test_stream_keeps_litellms_type_async(instrumented: Any, openai_server: Any) -> None:
    stream = await _open_async(openai_server)
    assert isinstance(stream, litellm.CustomStreamWrapper)
    async for _ in stream:
        pass


# --- exhaustion ---------------------------------------------------------------------------------------------


def _assert_completed(inst: Any, chunks: list[Any]) -> dict[str, Any]:
    span = _only_span(inst)
    attrs = dict(span.attributes)
    assert span.status.status_code is StatusCode.UNSET
    assert attrs[sc.LEANLLM_STREAM] is True
    assert attrs[sc.LEANLLM_STREAM_OUTCOME] == sc.STREAM_COMPLETED
    assert attrs[sc.LEANLLM_STREAM_CHUNKS] == len(chunks)
    assert attrs[sc.GEN_AI_RESPONSE_ID] == chunks[0].id
    assert list(attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS]) == ["stop"]
    ttft, total = attrs[sc.LEANLLM_TTFT_MS], attrs[sc.LEANLLM_STREAM_TIME_MS]
    assert 0 < ttft <= total
    assert total <= attrs[sc.LEANLLM_LATENCY_MS] + 1e-6
    assert sc.ERROR_TYPE not in attrs
    return attrs


def test_exhaustion_sync_without_usage(instrumented: Any, openai_server: Any) -> None:
    stream = _open_sync(openai_server)
    assert instrumented.all_llm_spans() == []  # open while the stream is
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("echo: ")
    attrs = _assert_completed(instrumented, chunks)
    _assert_no_tokens(attrs)
    # Later endings change nothing: the span ended exactly once.
    stream.close()
    del stream
    gc.collect()
    assert _only_span(instrumented).attributes[sc.LEANLLM_STREAM_OUTCOME] == sc.STREAM_COMPLETED


async def test_exhaustion_async_without_usage(instrumented: Any, openai_server: Any) -> None:
    stream = await _open_async(openai_server)
    chunks = [c async for c in stream]
    attrs = _assert_completed(instrumented, chunks)
    _assert_no_tokens(attrs)
    await stream.aclose()
    del stream
    gc.collect()
    assert len(instrumented.all_llm_spans()) == 1


def test_exhaustion_sync_with_usage(instrumented: Any, openai_server: Any) -> None:
    # A model name LiteLLM has a price for (the server's default is 3 chunks).
    chunks = list(_open_sync(openai_server, "gpt-4o-mini", stream_options={"include_usage": True}))
    attrs = _assert_completed(instrumented, chunks)
    assert attrs[sc.LEANLLM_USAGE_REPORTED] is True
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    assert attrs[sc.LEANLLM_COST_USD] > 0  # priced from LiteLLM's map on the export thread


async def test_exhaustion_async_with_usage(instrumented: Any, openai_server: Any) -> None:
    stream = await _open_async(openai_server, stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    attrs = _assert_completed(instrumented, chunks)
    assert attrs[sc.LEANLLM_USAGE_REPORTED] is True
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] > 0


def test_stream_under_a_parent_span_is_its_child(instrumented: Any, openai_server: Any) -> None:
    with instrumented.tracer.start_as_current_span("handler") as parent:
        list(_open_sync(openai_server))
    assert _only_span(instrumented).parent.span_id == parent.get_span_context().span_id


# --- error mid-stream ---------------------------------------------------------------------------------------


def _assert_errored(inst: Any, exc: BaseException) -> dict[str, Any]:
    span = _only_span(inst)
    attrs = dict(span.attributes)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs[sc.LEANLLM_STREAM_OUTCOME] == sc.STREAM_ERROR
    assert attrs[sc.ERROR_TYPE] == type(exc).__name__
    assert attrs[sc.LEANLLM_STREAM_CHUNKS] >= 1
    assert [e.name for e in span.events].count(sc.EXCEPTION_EVENT) == 1
    return attrs


def test_error_mid_stream_sync(instrumented: Any, openai_server: Any) -> None:
    stream = _open_sync(openai_server, "gpt-4o-mini-break-3")
    received = []
    with pytest.raises(Exception) as info:
        for chunk in stream:
            received.append(chunk)
    assert received
    _assert_errored(instrumented, info.value)


async def test_error_mid_stream_async(instrumented: Any, openai_server: Any) -> None:
    stream = await _open_async(openai_server, "gpt-4o-mini-break-3")
    received = []
    if ASYNC_STREAM_BREAK_IS_SILENT:
        # LiteLLM 1.80.0 ends a broken async stream without raising: the caller sees a short stream and no error,
        # and the span says what the caller saw (ended once, as completed, with the chunks that arrived).
        async for chunk in stream:
            received.append(chunk)
        span = _only_span(instrumented)
        attrs = dict(span.attributes or {})
        assert received and attrs[sc.LEANLLM_STREAM_OUTCOME] == sc.STREAM_COMPLETED
        assert attrs[sc.LEANLLM_STREAM_CHUNKS] == len(received)
        assert span.status.status_code is not StatusCode.ERROR
        return
    with pytest.raises(Exception) as info:
        async for chunk in stream:
            received.append(chunk)
    assert received
    _assert_errored(instrumented, info.value)


# --- early endings ------------------------------------------------------------------------------------------


def _assert_not_completed(inst: Any, outcome: str, error_type: str = "StreamNotCompleted") -> dict[str, Any]:
    span = _only_span(inst)
    attrs = dict(span.attributes)
    assert attrs[sc.LEANLLM_STREAM_OUTCOME] == outcome
    # An early end is never reported as a success.
    assert span.status.status_code is StatusCode.ERROR
    assert attrs[sc.ERROR_TYPE] == error_type
    assert attrs[sc.LEANLLM_STREAM_CHUNKS] >= 1
    assert sc.LEANLLM_TTFT_MS in attrs
    return attrs


def test_close_sync(instrumented: Any, openai_server: Any) -> None:
    stream = _open_sync(openai_server, "gpt-4o-mini-chunks-6")
    next(stream)
    stream.close()
    _assert_not_completed(instrumented, sc.STREAM_CLOSED)
    stream.close()
    assert len(instrumented.all_llm_spans()) == 1


async def test_aclose_async(instrumented: Any, openai_server: Any) -> None:
    stream = await _open_async(openai_server, "gpt-4o-mini-chunks-6")
    await stream.__anext__()
    await stream.aclose()
    _assert_not_completed(instrumented, sc.STREAM_CLOSED)
    await stream.aclose()
    assert len(instrumented.all_llm_spans()) == 1


def test_context_manager_exit_sync(instrumented: Any, openai_server: Any) -> None:
    with _open_sync(openai_server, "gpt-4o-mini-chunks-6") as stream:
        for _ in stream:
            break
    _assert_not_completed(instrumented, sc.STREAM_CLOSED)


def test_context_manager_after_exhaustion_is_completed(instrumented: Any, openai_server: Any) -> None:
    with _open_sync(openai_server) as stream:
        list(stream)
    assert _only_span(instrumented).attributes[sc.LEANLLM_STREAM_OUTCOME] == sc.STREAM_COMPLETED


async def test_context_manager_exit_async(instrumented: Any, openai_server: Any) -> None:
    async with await _open_async(openai_server, "gpt-4o-mini-chunks-6") as stream:
        async for _ in stream:
            break
    _assert_not_completed(instrumented, sc.STREAM_CLOSED)


def test_context_manager_exit_by_exception_sync(instrumented: Any, openai_server: Any) -> None:
    with pytest.raises(KeyError), _open_sync(openai_server, "gpt-4o-mini-chunks-6") as stream:
        next(stream)
        raise KeyError("app bug")
    span = _only_span(instrumented)
    assert span.attributes[sc.LEANLLM_STREAM_OUTCOME] == sc.STREAM_ERROR
    assert span.attributes[sc.ERROR_TYPE] == "KeyError"


def test_abandonment_sync(instrumented: Any, openai_server: Any) -> None:
    stream = _open_sync(openai_server, "gpt-4o-mini-chunks-6")
    for _ in stream:
        break
    assert instrumented.all_llm_spans() == []
    del stream
    gc.collect()
    _assert_not_completed(instrumented, sc.STREAM_ABANDONED)


async def test_abandonment_async(instrumented: Any, openai_server: Any) -> None:
    stream = await _open_async(openai_server, "gpt-4o-mini-chunks-6")
    async for _ in stream:
        break
    del stream
    gc.collect()
    _assert_not_completed(instrumented, sc.STREAM_ABANDONED)


def test_never_iterated_stream_is_abandoned(instrumented: Any, openai_server: Any) -> None:
    stream = _open_sync(openai_server)
    del stream
    gc.collect()
    span = _only_span(instrumented)
    assert span.attributes[sc.LEANLLM_STREAM_OUTCOME] == sc.STREAM_ABANDONED
    assert span.attributes[sc.LEANLLM_STREAM_CHUNKS] == 0
    assert sc.LEANLLM_TTFT_MS not in span.attributes


async def test_cancellation_while_iterating_a_slow_stream(instrumented: Any, openai_server: Any) -> None:
    stream = await _open_async(openai_server, "gpt-4o-mini-chunks-20-gap-300")
    first = asyncio.Event()

    async def consume(source: Any) -> None:
        async for _ in source:
            first.set()

    task = asyncio.create_task(consume(stream))
    await asyncio.wait_for(first.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    _assert_not_completed(instrumented, sc.STREAM_CANCELLED, "CancelledError")
    await stream.aclose()
    del stream
    gc.collect()
    assert len(instrumented.all_llm_spans()) == 1


# --- metrics ------------------------------------------------------------------------------------------------


def test_stream_records_time_to_first_chunk_metric(instrumented: Any, openai_server: Any) -> None:
    list(_open_sync(openai_server, stream_options={"include_usage": True}))
    ttfc = instrumented.metric_points(sc.METRIC_TIME_TO_FIRST_CHUNK)
    assert len(ttfc) == 1 and ttfc[0].count == 1 and ttfc[0].sum > 0
    token_types = sorted(p.attributes[sc.GEN_AI_TOKEN_TYPE] for p in instrumented.metric_points(sc.METRIC_TOKEN_USAGE))
    assert token_types == ["input", "output"]


def test_text_completion_stream(instrumented: Any, openai_server: Any) -> None:
    stream = litellm.text_completion(model="openai/gpt-3.5-turbo-instruct", prompt="hi", stream=True,
                                     api_base=openai_server.base_url, api_key="sk-test")
    list(stream)
    span = _only_span(instrumented)
    assert span.attributes[sc.GEN_AI_OPERATION_NAME] == "text_completion"
    assert span.attributes[sc.LEANLLM_STREAM_OUTCOME] == sc.STREAM_COMPLETED
