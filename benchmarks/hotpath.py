"""The caller-thread cost of leanllm-otel's wrapper alone, without LiteLLM (and its logging threads) around it.

The wrapper the instrumentor installs is applied to a function that returns a prebuilt LiteLLM ``ModelResponse``
at once, so what is timed is only our code: ``Invocation`` start, the span, response attributes, metrics, the
processor's ``on_end`` and the queue hand-off. This is the low-noise number to iterate on when changing
``instrumentation/invocation.py`` or ``processing/processor.py``; ``run.py`` measures the same thing inside real
LiteLLM calls. Also timed: the SDK span floor and a few components on their own.

    .venv/bin/python benchmarks/hotpath.py [--profile sampled_in|sampled_out] [--json]
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"


def _interleaved(calls: dict[str, Callable[[], Any]], n: int, repeats: int) -> dict[str, dict[str, float]]:
    """Like ``_time`` for several callables, alternating between them each repeat (the machine drifts)."""
    for fn in calls.values():
        for _ in range(min(n, 500)):
            fn()
    means: dict[str, list[float]] = {name: [] for name in calls}
    singles: dict[str, list[int]] = {name: [] for name in calls}
    clock = time.perf_counter_ns
    for _ in range(repeats):
        for name, fn in calls.items():
            times = singles[name]
            t0 = clock()
            for _ in range(n):
                t = clock()
                fn()
                times.append(clock() - t)
            means[name].append((clock() - t0) / n / 1e3)
    # ``us``: block time per call (all threads' work that ran meanwhile included); ``p50_us``: one call on the
    # caller's thread, the number the deferred path changes.
    return {
        name: {"us": statistics.median(v), "min_us": min(v), "p50_us": statistics.median(singles[name]) / 1e3}
        for name, v in means.items()
    }


def build(
    sampling_rate: float, capture: bool = False, prompt: str | None = None, vary: bool = False
) -> tuple[Callable[[], Any], Any]:
    """The wrapper around a function that returns a ready response, on a ``configure()`` pipeline.

    ``vary`` gives every call a prompt of its own (a counter appended), so the export thread's detector never
    answers from its memory of recently scanned texts; otherwise every call resends the same text, as a system
    prompt is resent.
    """
    import litellm
    from opentelemetry.sdk.trace import TracerProvider

    import leanllm_otel
    from leanllm_otel.instrumentation.instrumentor import MODULE_FUNCTIONS
    from leanllm_otel.instrumentation.telemetry import Telemetry
    from leanllm_otel.instrumentation.wrappers import TracingState, make_wrapper
    from leanllm_otel.pipeline import settings_for

    provider = TracerProvider()
    overrides: dict[str, Any] = {"sampling_rate": sampling_rate}
    if capture:
        overrides.update(capture_content=True, redaction_mode="redacted")
    pipeline = leanllm_otel.configure(
        database_url=f"sqlite:///{tempfile.mkdtemp()}/events.db",
        tracer_provider=provider,
        instrument=False,
        otlp=False,
        **overrides,
    )
    state = TracingState()
    state.telemetry = Telemetry(settings_for(pipeline.config), provider)
    spec = next(s for s in MODULE_FUNCTIONS if s.attribute == "completion")
    wrapper = make_wrapper(state, spec)
    response = litellm.completion(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], mock_response="Hello from the benchmark."
    )
    content = "hello " * 16 if prompt is None else prompt
    kwargs = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], "temperature": 0.2}

    def original(*args: Any, **kw: Any) -> Any:
        return response

    turns = itertools.count()

    def call() -> None:
        if vary:
            wrapper(
                original, None, (), {**kwargs, "messages": [{"role": "user", "content": f"{content} #{next(turns)}"}]}
            )
        else:
            wrapper(original, None, (), kwargs)

    return call, pipeline


def components(pipeline: Any) -> dict[str, Callable[[], Any]]:
    """The pieces of one sampled-in call, each on its own (same inputs the wrapper sees)."""
    import random

    import litellm
    from opentelemetry.trace import SpanKind

    from leanllm_otel import semconv as sc
    from leanllm_otel.instrumentation.attributes import request_attributes, response_attributes, usage_attributes
    from leanllm_otel.instrumentation.telemetry import Telemetry
    from leanllm_otel.pipeline import settings_for

    telemetry = Telemetry(settings_for(pipeline.config), pipeline.provider)
    response = litellm.completion(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], mock_response="Hello from the benchmark."
    )
    kwargs = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello " * 16}], "temperature": 0.2}
    start = request_attributes("chat", "gpt-4o-mini", kwargs)
    start.update(
        {
            sc.LEANLLM_REQUEST_ID: str(uuid.uuid4()),
            sc.LEANLLM_SAMPLING_RATE: 1.0,
            sc.LEANLLM_REDACTION_MODE: "metadata",
            sc.LEANLLM_STREAM: False,
        }
    )
    end = response_attributes(response)
    tracer = telemetry.tracer
    open_span = tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=start)

    def span_start_set_end() -> None:
        span = tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=start)
        span.set_attributes(end)
        span.end()

    return {
        "request_attributes": lambda: request_attributes("chat", "gpt-4o-mini", kwargs),
        "uuid4 (os.urandom)": lambda: str(uuid.uuid4()),
        "random.getrandbits(128) hex": lambda: f"{random.getrandbits(128):032x}",
        "response_attributes": lambda: response_attributes(response),
        "usage_attributes": lambda: usage_attributes(response.usage),
        "span.set_attributes(end)": lambda: open_span.set_attributes(end),
        "record_metrics": lambda: telemetry.record_metrics("chat", open_span.attributes, end, 0.5, None),
        "span start+set+end via pipeline": span_start_set_end,
    }


def _sdk_path(call: Callable[[], Any]) -> Callable[[], None]:
    """``call`` with deferred span materialisation off: the SDK span made and ended on the caller's thread."""
    from leanllm_otel.instrumentation import deferred

    def sdk() -> None:
        deferred.ENABLED = False
        try:
            call()
        finally:
            deferred.ENABLED = True

    return sdk


def floor_call() -> Callable[[], None]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from worker import _FLOOR_ATTRIBUTES

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("floor")
    count = [0]

    def call() -> None:
        tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=_FLOOR_ATTRIBUTES).end()
        count[0] += 1
        if count[0] % 10_000 == 0:
            exporter.clear()

    return call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--profile", choices=("sampled_in", "sampled_out", "redacted"), default=None)
    parser.add_argument("--components", action="store_true", help="also time the pieces of one call")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    variants = {"sampled_in": (1.0, False), "sampled_out": (0.0, False), "redacted": (1.0, True)}
    if args.profile:
        target, pipeline = build(*variants[args.profile])
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.n * 5):
            target()
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)
        pipeline.shutdown()
        os._exit(0)
    calls: dict[str, Callable[[], Any]] = {"floor_span": floor_call()}
    pipelines = []
    for name, (rate, capture) in variants.items():
        # One at a time, flushed: the first export runs the store's migrations, which must not overlap.
        call, pipeline = build(rate, capture)
        call()
        pipeline.force_flush(30_000)
        calls[f"ours_{name}"] = call
        pipelines.append(pipeline)
        if name == "sampled_in":
            calls["ours_sampled_in_sdk (before)"] = _sdk_path(call)
    if args.components:
        calls.update(components(pipelines[0]))
    results = _interleaved(calls, args.n, args.repeats)
    for pipeline in pipelines:
        pipeline.force_flush(30_000)
    if args.json:
        print(json.dumps(results))
    else:
        for name, value in results.items():
            print(
                f"{name:<32} p50 {value['p50_us']:8.2f} us/call, block {value['us']:8.2f} us/call "
                f"(min {value['min_us']:.2f})"
            )
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
