"""Export throughput of SQLSpanExporter behind LeanLLMBatchSpanProcessor, into SQLite and PostgreSQL.

    .venv/bin/python benchmarks/export_throughput.py [--spans 100000] [--backends sqlite,postgres]

For each backend and each settings profile it ends ``--spans`` LLM spans on a real TracerProvider (the application
thread), waits until everything is flushed, and prints:

- end-to-end events/s (span creation + queue + mapping + INSERT, all in this one process, sharing the GIL),
- exporter events/s (events written / time spent inside ``export()``: what the exporter sustains),
- drops (queue full / retries), and RSS: peak and at each quarter of the run (flat = bounded memory).

Profiles: ``tuned`` (batch 1000, flush 200 ms, queue 20000) and ``leanllm-defaults`` (batch 100, flush 180 s,
queue 10000: LeanLLM's own worker defaults, under which it sustains about 1 event/s). The producer is paced
to stay under the queue size so both profiles write every event (drops would make the rate meaningless).
PostgreSQL: a private server started with ``tests/support/postgres.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SpanExportResult  # noqa: E402

from leanllm_otel import semconv as sc  # noqa: E402
from leanllm_otel.config import LeanLLMConfig  # noqa: E402
from leanllm_otel.exporters.batching import LeanLLMBatchSpanProcessor  # noqa: E402
from leanllm_otel.exporters.sql import SQLSpanExporter  # noqa: E402
from leanllm_otel.store import EventStore  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")

PROFILES: dict[str, dict[str, int]] = {
    "tuned": {"batch_size": 1000, "flush_interval_ms": 200, "queue_max_size": 20_000},
    "leanllm-defaults": {"batch_size": 100, "flush_interval_ms": 180_000, "queue_max_size": 10_000},
}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


class TimedExporter(SQLSpanExporter):
    """Accumulates the time spent in export() (the exporter's own capacity)."""

    busy_s = 0.0
    written = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        started = time.perf_counter()
        result = super().export(spans)
        self.busy_s += time.perf_counter() - started
        if result is SpanExportResult.SUCCESS:
            self.written += len(spans)
        return result


def run(url: str, n: int, profile: str) -> dict[str, Any]:
    settings = PROFILES[profile]
    config = LeanLLMConfig(database_url=url, shutdown_timeout_ms=60_000, **settings)
    exporter = TimedExporter(config=config)
    exporter.migrate(30)
    processor = LeanLLMBatchSpanProcessor(exporter, config)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")
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
        span = tracer.start_span("chat gpt-4o-mini")
        span.set_attributes({
            sc.LEANLLM_REQUEST_ID: str(uuid.uuid4()),
            sc.GEN_AI_OPERATION_NAME: "chat",
            sc.GEN_AI_PROVIDER_NAME: "openai",
            sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
            sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
            sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
            sc.GEN_AI_USAGE_INPUT_TOKENS: 120,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 45,
            sc.LEANLLM_COST_USD: 0.000045,
            sc.LEANLLM_LATENCY_MS: 830.0,
            sc.LEANLLM_LABEL_PREFIX + "feature": "search",
            sc.LEANLLM_CORRELATION_ID: f"req-{i // 10}",
            sc.LEANLLM_ENVIRONMENT: "bench",
        })
        span.end()
        if len(queue) >= high_water:
            while len(queue) >= high_water // 2:
                if settings["flush_interval_ms"] > 1000:
                    processor.force_flush()  # long interval: the batch-size trigger alone drives the worker
                time.sleep(0.001)
        if (i + 1) % (n // 4) == 0:
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
        "stored": stored,
        "end_to_end_eps": stored / elapsed,
        "exporter_eps": exporter.written / exporter.busy_s if exporter.busy_s else float("nan"),
        "drops": processor.drops.by_reason(),
        "peak_rss_mb": max(samples + quarter_rss),
        "quarter_rss_mb": quarter_rss,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--profiles", default="tuned,leanllm-defaults")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    print(f"{args.spans} spans per run, {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    print(f"{'backend':<9} {'profile':<17} {'stored':>7} {'end-to-end ev/s':>16} {'exporter ev/s':>14} "
          f"{'peak RSS MB':>12}  RSS at 25/50/75/100%  drops")
    server = None
    try:
        for backend in backends:
            for profile in profiles:
                if backend == "sqlite":
                    url = f"sqlite:///{tempfile.mkdtemp(prefix='leanllm-bench-')}/events.db"
                else:
                    if server is None:
                        from support.postgres import PostgresServer

                        server = PostgresServer().start()
                    url = server.create_database()
                r = run(url, args.spans, profile)
                quarters = "/".join(f"{v:.0f}" for v in r["quarter_rss_mb"])
                print(f"{backend:<9} {profile:<17} {r['stored']:>7} {r['end_to_end_eps']:>16,.0f} "
                      f"{r['exporter_eps']:>14,.0f} {r['peak_rss_mb']:>12.0f}  {quarters:<20}  {r['drops'] or '-'}",
                      flush=True)
    finally:
        if server is not None:
            server.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
