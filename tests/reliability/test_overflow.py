"""Overflow: a burst of 100,000 calls into a small queue whose exporter is stuck.

Memory stays bounded, the oldest spans are dropped and every one of them is counted, and the application's
per-call latency does not grow with the backlog.
"""

from __future__ import annotations

import gc
import statistics
import threading
import time

import psutil
from opentelemetry.sdk.trace import TracerProvider

import leanllm_otel
from leanllm_otel import CallOptions, use_call_options

from .helpers import CollectingExporter, DropRecorder, stub_completion, traced_stub

CALLS = 100_000
QUEUE = 512
MESSAGES = [{"role": "user", "content": "x" * 200}]


def test_burst_of_100k_calls_into_a_small_queue() -> None:
    gate = threading.Event()
    exporter = CollectingExporter(gate=gate)
    drops = DropRecorder()
    provider = TracerProvider()
    pipe = leanllm_otel.configure(
        tracer_provider=provider,
        exporters=[exporter],
        otlp=False,
        enable_persistence=False,
        queue_max_size=QUEUE,
        batch_size=128,
        flush_interval_ms=10,
        capture_content=True,  # every kept span carries a content snapshot: the queue cap must free them
        on_dropped_events=drops,
    )
    process = psutil.Process()
    call = traced_stub(stub_completion)
    durations: list[int] = []
    try:
        rss_after_warmup = 0
        for i in range(CALLS):
            if i == 10_000:
                gc.collect()
                rss_after_warmup = process.memory_info().rss
            started = time.perf_counter_ns()
            with use_call_options(CallOptions(request_id=f"call-{i}")):
                result = call(model="gpt-4o-mini", messages=MESSAGES, tag=str(i))
            durations.append(time.perf_counter_ns() - started)
            assert result.id == f"resp-{i}"
        gc.collect()
        rss_growth = process.memory_info().rss - rss_after_warmup

        # bounded memory: 90,000 more spans with content would cost hundreds of MB if they were kept
        assert rss_growth < 64 * 1024 * 1024, rss_growth
        # latency does not grow with the backlog (loose: medians of the first and last tenth)
        tenth = CALLS // 10
        first = statistics.median(durations[:tenth])
        last = statistics.median(durations[-tenth:])
        assert last < 5 * first, (first, last)

        gate.set()
        assert pipe.force_flush(30_000)
        exported = exporter.event_ids()
        assert pipe.counters["kept"] == CALLS
        # every span is either exported or counted as dropped (queue_full), none twice
        assert len(exported) == len(set(exported))
        assert len(exported) + drops.total == CALLS, (len(exported), drops.total)
        assert drops.reasons() == {"queue_full"}
        assert pipe.dropped_events_count == drops.total
        # the oldest were dropped: the newest queue-full of calls all made it
        assert {f"call-{i}" for i in range(CALLS - QUEUE, CALLS)} <= set(exported)
    finally:
        gate.set()
        pipe.shutdown()
        provider.shutdown()
