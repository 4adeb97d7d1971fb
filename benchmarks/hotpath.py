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


def _time(fn: Callable[[], Any], n: int, repeats: int) -> dict[str, float]:
    """Median over ``repeats`` of the mean time per call of ``n`` calls (us)."""
    for _ in range(min(n, 500)):
        fn()
    means = []
    clock = time.perf_counter_ns
    for _ in range(repeats):
        t0 = clock()
        for _ in range(n):
            fn()
        means.append((clock() - t0) / n / 1e3)
    return {"us": statistics.median(means), "min_us": min(means)}


def build(sampling_rate: float, capture: bool = False) -> tuple[Callable[[], Any], Any]:
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
        database_url=f"sqlite:///{tempfile.mkdtemp()}/events.db", tracer_provider=provider, instrument=False,
        otlp=False, **overrides,
    )
    state = TracingState()
    state.telemetry = Telemetry(settings_for(pipeline.config), provider)
    spec = next(s for s in MODULE_FUNCTIONS if s.attribute == "completion")
    wrapper = make_wrapper(state, spec)
    response = litellm.completion(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], mock_response="Hello from the benchmark."
    )
    kwargs = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello " * 16}], "temperature": 0.2}

    def original(*args: Any, **kw: Any) -> Any:
        return response

    def call() -> None:
        wrapper(original, None, (), kwargs)

    return call, pipeline


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
    results = {"floor_span": _time(floor_call(), args.n, args.repeats)}
    # One pipeline at a time: each has its own export thread, which would otherwise compete for the GIL.
    for name, (rate, capture) in variants.items():
        call, pipeline = build(rate, capture)
        pipeline.force_flush(30_000)
        results[f"ours_{name}"] = _time(call, args.n, args.repeats)
        pipeline.shutdown()
    results["uuid4"] = _time(uuid.uuid4, args.n, args.repeats)
    if args.json:
        print(json.dumps(results))
    else:
        for name, value in results.items():
            print(f"{name:<24} {value['us']:8.2f} us/call (min {value['min_us']:.2f})")
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
