"""Concurrency: many threads and asyncio tasks at once; no span crosses over, every call is accounted for."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import litellm
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import StatusCode

import leanllm_otel
from leanllm_otel import CallOptions, use_call_options
from leanllm_otel import semconv as sc

from .helpers import CollectingExporter, stub_completion, traced_stub

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def pipeline() -> Iterator[tuple[leanllm_otel.Pipeline, CollectingExporter, TracerProvider]]:
    exporter = CollectingExporter()
    provider = TracerProvider()
    pipe = leanllm_otel.configure(
        tracer_provider=provider,
        exporters=[exporter],
        otlp=False,
        enable_persistence=False,
        queue_max_size=100_000,  # every span of the run fits: the test is about cross-over, not export speed
        batch_size=2048,
        flush_interval_ms=50,
    )
    try:
        yield pipe, exporter, provider
    finally:
        pipe.shutdown()
        provider.shutdown()


def _kind(i: int) -> str:
    return ("ok", "stream", "error", "sampled_out", "error_at_rate_0")[i % 5]


def _check(pipe: leanllm_otel.Pipeline, exporter: CollectingExporter, expected: dict[str, dict[str, Any]]) -> None:
    assert pipe.force_flush(30_000)
    counters = pipe.counters
    calls = len(expected)
    assert counters["kept"] + counters["sampled_out"] + counters["kept_errors"] == calls, counters
    assert counters["sampled_out"] == sum(1 for e in expected.values() if e["kind"] == "sampled_out")
    assert counters["kept_errors"] == sum(1 for e in expected.values() if e["kind"].startswith("error"))
    assert counters["dropped"] == 0
    by_id: dict[str, Any] = {}
    for span in exporter.spans:
        if sc.LEANLLM_REQUEST_ID not in (span.attributes or {}):
            continue  # the application's own handler spans pass through too
        event_id = str((span.attributes or {})[sc.LEANLLM_REQUEST_ID])
        assert event_id not in by_id, f"{event_id} exported twice"
        by_id[event_id] = span
    kept_ids = {i for i, e in expected.items() if e["kind"] != "sampled_out"}
    assert set(by_id) == kept_ids
    for event_id, span in by_id.items():
        want = expected[event_id]
        attributes = span.attributes or {}
        # its own attributes, never another call's
        assert attributes[sc.LEANLLM_LABEL_PREFIX + "worker"] == want["worker"]
        assert attributes[sc.LEANLLM_LABEL_PREFIX + "call"] == want["call"]
        # the right parent: the span that was current on that thread / task when the call was made
        assert span.parent is not None and span.parent.span_id == want["parent"], event_id
        assert span.context is not None and span.context.trace_id == want["trace"]
        is_error = want["kind"].startswith("error")
        assert (span.status.status_code is StatusCode.ERROR) is is_error
        assert bool(attributes[sc.LEANLLM_STREAM]) is (want["kind"] == "stream")
        if not is_error:
            assert attributes[sc.GEN_AI_RESPONSE_ID] == want["response_id"]


def test_32_threads_x_1000_calls_never_cross_over(pipeline: Any) -> None:
    pipe, exporter, provider = pipeline
    tracer = provider.get_tracer("app")
    call = traced_stub(stub_completion)
    expected: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    failures: list[BaseException] = []
    barrier = threading.Barrier(32)

    def worker(w: int) -> None:
        try:
            barrier.wait(10)
            mine: dict[str, dict[str, Any]] = {}
            for i in range(1000):
                kind = _kind(i + w)
                event_id = f"w{w}-c{i}"
                options = CallOptions(
                    request_id=event_id,
                    labels={"worker": str(w), "call": str(i)},
                    sample=0.0 if kind in ("sampled_out", "error_at_rate_0") else None,
                )
                with tracer.start_as_current_span(f"handler {event_id}") as parent, use_call_options(options):
                    context = parent.get_span_context()
                    try:
                        result = call(model="gpt-4o-mini", messages=MESSAGES, stream=kind == "stream",
                                      fail=kind.startswith("error"), tag=event_id)
                    except RuntimeError as exc:
                        assert str(exc) == f"injected failure {event_id}"  # LiteLLM's exception, untouched
                    else:
                        if kind == "stream":
                            chunks = list(result)
                            assert [c.id for c in chunks] == [f"resp-{event_id}"] * 2
                        else:
                            assert result.id == f"resp-{event_id}"
                mine[event_id] = {"kind": kind, "worker": str(w), "call": str(i), "parent": context.span_id,
                                  "trace": context.trace_id, "response_id": f"resp-{event_id}"}
            with lock:
                expected.update(mine)
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures[:3]
    assert len(expected) == 32_000
    _check(pipe, exporter, expected)


def test_threads_through_real_litellm(pipeline: Any) -> None:
    """The same invariants through ``litellm.completion`` itself (mock_response), at a size LiteLLM's per-call
    cost allows."""
    pipe, exporter, provider = pipeline
    tracer = provider.get_tracer("app")
    expected: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    failures: list[BaseException] = []

    def worker(w: int) -> None:
        try:
            for i in range(10):
                kind = _kind(i + w)
                event_id = f"lw{w}-c{i}"
                options = CallOptions(
                    request_id=event_id,
                    labels={"worker": str(w), "call": str(i)},
                    sample=0.0 if kind in ("sampled_out", "error_at_rate_0") else None,
                )
                mock: Any = f"answer {event_id}"
                if kind.startswith("error"):
                    mock = litellm.RateLimitError(message=f"limit {event_id}", llm_provider="openai",
                                                  model="gpt-4o-mini")
                with tracer.start_as_current_span(f"handler {event_id}") as parent, use_call_options(options):
                    context = parent.get_span_context()
                    try:
                        response = litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response=mock,
                                                      stream=kind == "stream")
                    except litellm.RateLimitError as exc:
                        assert event_id in str(exc)
                        response_id = None
                    else:
                        if kind == "stream":
                            text = "".join(c.choices[0].delta.content or "" for c in response)
                            response_id = None
                        else:
                            text = response.choices[0].message.content
                            response_id = response.id
                        assert text == f"answer {event_id}"
                with lock:
                    expected[event_id] = {"kind": kind, "worker": str(w), "call": str(i), "parent": context.span_id,
                                          "trace": context.trace_id, "response_id": response_id}
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures[:3]
    for want in expected.values():
        if want["response_id"] is None:
            want.pop("response_id")
    _check_litellm(pipe, exporter, expected)


def _check_litellm(pipe: leanllm_otel.Pipeline, exporter: CollectingExporter, expected: dict[str, Any]) -> None:
    # LiteLLM's mock stream and its response ids are its own; check everything else.
    assert pipe.force_flush(30_000)
    for want in expected.values():
        want.setdefault("response_id", None)
    spans_ok = [s for s in exporter.spans
                if sc.LEANLLM_REQUEST_ID in (s.attributes or {}) and (s.attributes or {}).get(sc.GEN_AI_RESPONSE_ID)]
    response_ids = {str((s.attributes or {})[sc.LEANLLM_REQUEST_ID]): (s.attributes or {})[sc.GEN_AI_RESPONSE_ID]
                    for s in spans_ok}
    for event_id, want in expected.items():
        if want["response_id"] is not None and want["kind"] != "sampled_out":
            assert response_ids.get(event_id) == want["response_id"], event_id
        want["response_id"] = response_ids.get(event_id)
    _check(pipe, exporter, expected)


async def test_1000_concurrent_asyncio_tasks(pipeline: Any) -> None:
    pipe, exporter, provider = pipeline
    tracer = provider.get_tracer("app")
    expected: dict[str, dict[str, Any]] = {}
    start = asyncio.Event()

    async def task(n: int) -> None:
        kind = _kind(n)
        event_id = f"task-{n}"
        options = CallOptions(
            request_id=event_id,
            labels={"worker": "asyncio", "call": str(n)},
            sample=0.0 if kind in ("sampled_out", "error_at_rate_0") else None,
        )
        mock: Any = f"answer {event_id}"
        if kind.startswith("error"):
            mock = litellm.InternalServerError(message=f"boom {event_id}", llm_provider="openai", model="gpt-4o-mini")
        with tracer.start_as_current_span(f"handler {event_id}") as parent, use_call_options(options):
            context = parent.get_span_context()
            await start.wait()  # all 1000 are in flight together
            try:
                response = await litellm.acompletion(model="gpt-4o-mini", messages=MESSAGES, mock_response=mock,
                                                     stream=kind == "stream")
            except litellm.InternalServerError as exc:
                assert event_id in str(exc)
            else:
                if kind == "stream":
                    text = "".join([c.choices[0].delta.content or "" async for c in response])
                else:
                    text = response.choices[0].message.content
                assert text == f"answer {event_id}"
        expected[event_id] = {"kind": kind, "worker": "asyncio", "call": str(n), "parent": context.span_id,
                              "trace": context.trace_id}

    tasks = [asyncio.create_task(task(n)) for n in range(1000)]
    await asyncio.sleep(0)
    start.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    assert len(expected) == 1000
    _check_litellm(pipe, exporter, expected)
