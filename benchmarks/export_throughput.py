"""Export throughput of SQLSpanExporter behind LeanLLMBatchSpanProcessor, and of the ``leanllm`` entry-point
exporter behind a plain SDK BatchSpanProcessor, into SQLite and PostgreSQL.

    .venv/bin/python benchmarks/export_throughput.py [--spans 100000] [--backends sqlite,postgres]
        [--profiles tuned,leanllm-defaults,sdk-default] [--modes export,end-to-end]

For each backend, mode and settings profile it pushes ``--spans`` finished LLM spans (the attributes a real
instrumented chat call carries, ~24 of them; ids, token counts, latency, cost, the response id and a label differ from
span to span, as they do between real calls) through the batch processor's ``on_end``, waits until everything
is flushed, and prints:

- events/s: rows stored / time from the first span to the end of the final flush,
- the ratio to a baseline measured at the end of the same run: plain SQLAlchemy Core async inserts of ready-made rows
  like ours (what the issue quotes at 36,000-39,000 rows/s on this machine),
- drops (queue full / retries), and RSS: peak and at each quarter of the run (flat = bounded memory).

Modes: ``export`` hands the processor ready-made ``ReadableSpan`` objects (the export path: queue, batch, map,
INSERT; the producer costs ~8 us a span of the same GIL); ``end-to-end`` also creates each span on the SDK tracer in the producer
thread (start_span + attributes + end, ~25 us a span of the same GIL), as an application would.

Profiles: ``tuned`` (batch 1000, flush 200 ms, queue 20000) and ``leanllm-defaults`` (batch 100, flush 180 s,
queue 10000: LeanLLM's own worker defaults, under which it sustains about 1 event/s), both with
``LeanLLMBatchSpanProcessor`` in front of ``SQLSpanExporter``; ``sdk-default`` is what another configurator (or a
user) builds from the ``opentelemetry_traces_exporter`` entry point: ``BatchSpanProcessor(LeanLLMSpanExporter())``
with the SDK's default settings (batch 512, queue 2048, delay 5 s; the worker wakes at 512 queued spans). The
producer is paced to stay under the queue size so every profile writes every event (drops would make the rate
meaningless).
PostgreSQL: a private server started with ``loopback/postgres.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the loopback servers
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags  # noqa: E402
from proc_memory import rss_kb  # noqa: E402
from span_shapes import chat_end_attributes, chat_start_attributes  # noqa: E402

from leanllm_otel import semconv as sc  # noqa: E402
from leanllm_otel.config import LeanLLMConfig  # noqa: E402
from leanllm_otel.event import span_to_event  # noqa: E402
from leanllm_otel.exporters.batching import LeanLLMBatchSpanProcessor  # noqa: E402
from leanllm_otel.exporters.from_env import LeanLLMSpanExporter  # noqa: E402
from leanllm_otel.exporters.sql import SQLSpanExporter  # noqa: E402
from leanllm_otel.store import EventStore  # noqa: E402

PROFILES: dict[str, dict[str, int]] = {
    "tuned": {"batch_size": 1000, "flush_interval_ms": 200, "queue_max_size": 20_000},
    "leanllm-defaults": {"batch_size": 100, "flush_interval_ms": 180_000, "queue_max_size": 10_000},
    # The SDK BatchSpanProcessor's own defaults (OTEL_BSP_*), used only for pacing: the processor is built plain.
    "sdk-default": {"batch_size": 512, "flush_interval_ms": 5_000, "queue_max_size": 2_048},
}


def rss_mb() -> float:
    return rss_kb() / 1024


def _per_call(i: int, ids: random.Random) -> dict[str, Any]:
    """What differs from call to call in a real workload: ids, token counts, latency, cost, the response id, and
    a label with a few values (so a batch's constant columns are only those a real batch has)."""
    input_tokens, output_tokens = 20 + ids.randrange(400), 1 + ids.randrange(200)
    return {
        sc.LEANLLM_REQUEST_ID: str(uuid.UUID(int=ids.getrandbits(128), version=4)),
        sc.LEANLLM_CORRELATION_ID: f"req-{i // 10}",
        sc.GEN_AI_RESPONSE_ID: f"chatcmpl-{ids.getrandbits(48):x}",
        sc.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
        sc.LEANLLM_TOTAL_TOKENS: input_tokens + output_tokens,
        sc.LEANLLM_COST_USD: input_tokens * 1.5e-7 + output_tokens * 6e-7,
        sc.LEANLLM_LATENCY_MS: 200.0 + ids.random() * 900.0,
        sc.LEANLLM_LABEL_PREFIX + "feature": ("search", "chat", "summary")[i % 3],
    }


def _producer(mode: str, provider: TracerProvider, processor: SpanProcessor) -> Callable[[int], None]:
    """One call per span: ``export`` builds the ReadableSpan directly, ``end-to-end`` goes through the tracer."""
    base = {**chat_start_attributes(), **chat_end_attributes(), sc.LEANLLM_LABEL_PREFIX + "feature": "search"}
    ids = random.Random(7)
    resource = provider.resource  # shared, as the SDK's spans share it (a ReadableSpan without one detects a new one)
    if mode == "end-to-end":
        tracer = provider.get_tracer("bench")

        def through_tracer(i: int) -> None:
            span = tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT)
            attributes = dict(base)
            attributes.update(_per_call(i, ids))
            span.set_attributes(attributes)
            span.end()

        return through_tracer

    def ready_made(i: int) -> None:
        attributes = dict(base)
        attributes.update(_per_call(i, ids))
        now = time.time_ns()
        context = SpanContext(ids.getrandbits(128), ids.getrandbits(64), False, TraceFlags(TraceFlags.SAMPLED))
        processor.on_end(ReadableSpan(
            name="chat gpt-4o-mini", context=context, kind=SpanKind.CLIENT, attributes=attributes,
            start_time=now - 830_000_000, end_time=now, status=Status(StatusCode.UNSET), resource=resource,
        ))

    return ready_made


def run(url: str, n: int, profile: str, mode: str, concurrent_exports: int = 2) -> dict[str, Any]:
    settings = PROFILES[profile]
    config = LeanLLMConfig(database_url=url, shutdown_timeout_ms=60_000, **settings)
    processor: BatchSpanProcessor
    if profile == "sdk-default":
        entry = LeanLLMSpanExporter(config)
        entry.inner.migrate(30)  # type: ignore[attr-defined]
        processor, drops = BatchSpanProcessor(entry), entry.drops
    else:
        exporter = SQLSpanExporter(config=config)
        exporter.migrate(30)
        processor = LeanLLMBatchSpanProcessor(exporter, config, concurrent_exports=concurrent_exports)
        drops = processor.drops
    provider = TracerProvider()
    provider.add_span_processor(processor)
    produce = _producer(mode, provider, processor)
    queue = processor._batch_processor._queue  # pacing only: keep the producer under the queue bound
    high_water = settings["queue_max_size"] - settings["batch_size"]

    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            samples.append(rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    quarter_rss: list[float] = []
    started = time.perf_counter()
    for i in range(n):
        produce(i)
        if len(queue) >= high_water:
            while len(queue) >= high_water // 2:
                if profile == "leanllm-defaults":
                    processor.force_flush()  # 180 s interval, batch 100: the size trigger alone is too slow
                time.sleep(0.001)
        if (i + 1) % max(1, n // 4) == 0:
            quarter_rss.append(rss_mb())
    provider.force_flush()
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    provider.shutdown()
    with EventStore(url) as store:
        stored = store.count_events()
    return {
        "profile": profile,
        "mode": mode,
        "stored": stored,
        "end_to_end_eps": stored / elapsed,
        "drops": drops.by_reason(),
        "peak_rss_mb": max(samples + quarter_rss),
        "quarter_rss_mb": quarter_rss,
    }


def plain_sqlalchemy_rows_per_s(url: str, n: int) -> float:
    """The baseline: plain SQLAlchemy Core async inserts (``insert(events)`` with a list of row dicts, 1,000 per
    transaction) of rows like ours, built beforehand, nothing else in the process."""
    from sqlalchemy import insert

    from leanllm_otel.store.engine import async_database_url, create_engine
    from leanllm_otel.store.schema import events

    exporter = SQLSpanExporter(config=LeanLLMConfig(database_url=url))
    exporter.migrate(30)
    exporter.shutdown()
    recorded_at = datetime.now(timezone.utc)
    spans: list[ReadableSpan] = []

    class Collect:
        def on_end(self, span: ReadableSpan) -> None:
            spans.append(span)

    produce = _producer("export", TracerProvider(), Collect())  # type: ignore[arg-type]
    rows = []
    for i in range(n):
        produce(i)
        rows.append(SQLSpanExporter.event_to_row(span_to_event(spans.pop()), recorded_at))

    async def write() -> float:
        engine = create_engine(async_database_url(url))  # the store's own engine settings (WAL, pragmas)
        started = time.perf_counter()
        for start in range(0, n, 1000):
            async with engine.begin() as connection:
                await connection.execute(insert(events), rows[start : start + 1000])
        elapsed = time.perf_counter() - started
        await engine.dispose()
        return n / elapsed

    return asyncio.run(write())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--profiles", default="tuned,leanllm-defaults,sdk-default")
    parser.add_argument("--modes", default="export,end-to-end")
    parser.add_argument("--concurrent-exports", type=int, default=2,
                        help="batches written at once (configure() uses 2 for the SQL store; 1 = the plain SDK way)")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    print(f"{args.spans} spans per run, {os.cpu_count()} CPUs, python {sys.version.split()[0]}, "
          f"{args.concurrent_exports} concurrent export(s)")
    print(f"{'backend':<9} {'mode':<11} {'profile':<17} {'stored':>7} {'events/s':>9} "
          f"{'peak RSS MB':>12}  RSS at 25/50/75/100%  drops")
    server = None
    baselines: dict[str, float] = {}

    def new_url(backend: str) -> str:
        nonlocal server
        if backend == "sqlite":
            return f"sqlite:///{tempfile.mkdtemp(prefix='leanllm-bench-')}/events.db"
        if server is None:
            from loopback.postgres import PostgresServer

            server = PostgresServer().start()
        return server.create_database()

    results: list[tuple[str, str, str, float]] = []
    try:
        for backend, mode, profile in itertools.product(backends, modes, profiles):
            r = run(new_url(backend), args.spans, profile, mode, args.concurrent_exports)
            results.append((backend, mode, profile, r["end_to_end_eps"]))
            quarters = "/".join(f"{v:.0f}" for v in r["quarter_rss_mb"])
            print(f"{backend:<9} {mode:<11} {profile:<17} {r['stored']:>7} {r['end_to_end_eps']:>9,.0f} "
                  f"{r['peak_rss_mb']:>12.0f}  {quarters:<20}  {r['drops'] or '-'}",
                  flush=True)
        # Last, so the rows it holds do not inflate the RSS figures above.
        print("\nbaseline: plain SQLAlchemy Core async inserts of the same rows, made beforehand, 1,000 a transaction")
        for backend in backends:
            baselines[backend] = plain_sqlalchemy_rows_per_s(new_url(backend), args.spans)
            print(f"{backend:<9} {baselines[backend]:>9,.0f} rows/s", flush=True)
        print(f"\n{'backend':<9} {'mode':<11} {'profile':<17} {'ours / baseline':>16}")
        for backend, mode, profile, rate in results:
            print(f"{backend:<9} {mode:<11} {profile:<17} {rate / baselines[backend]:>15.2f}x")
    finally:
        if server is not None:
            server.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
