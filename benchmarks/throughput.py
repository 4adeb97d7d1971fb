"""Export throughput and memory of the full pipeline, one sink per process.

Spans carrying the attributes of a finished LLM call are produced as fast as one thread can on the pipeline's
own TracerProvider, so every one goes through ``LeanLLMSpanProcessor`` (sampling, PendingSpan), the batch
processor's queue, the export-thread renderer and the real exporter. Reported: events/s (exported events over the
time from the first span to the end of the final flush), drops (queue full + delivery), peak RSS and RSS samples
along the run (memory must stay flat: the queue is bounded).

    python benchmarks/throughput.py '{"sink": "sqlite", "n": 100000, "queue_max_size": null, "target": "..."}'

prints one JSON object. ``sink`` is ``sqlite`` | ``postgresql`` | ``service`` | ``otlp``; ``target`` is the
database URL, service endpoint or OTLP traces endpoint.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
for _name in [name for name in os.environ if name.startswith(("OTEL_", "LEANLLM_"))]:
    del os.environ[_name]

from proc_memory import peak_rss_kb, rss_kb  # noqa: E402
from span_shapes import chat_end_attributes, chat_start_attributes  # noqa: E402

_PROTOCOL = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
sys.stdout = sys.stderr


def run(options: dict[str, Any]) -> dict[str, Any]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import SpanKind

    import leanllm_otel
    from leanllm_otel import semconv as sc

    sink: str = options["sink"]
    n = int(options["n"])
    overrides: dict[str, Any] = {}
    if options.get("queue_max_size"):
        overrides["queue_max_size"] = int(options["queue_max_size"])
        overrides["batch_size"] = min(int(options["queue_max_size"]), 512)
    if options.get("batch_size"):
        overrides["batch_size"] = int(options["batch_size"])
    target = options.get("target")
    tmp = tempfile.mkdtemp(prefix="leanllm-throughput-")
    if sink == "sqlite":
        overrides["database_url"] = target or f"sqlite:///{tmp}/events.db"
    elif sink == "postgresql":
        overrides["database_url"] = target
    elif sink == "service":
        overrides["leanllm_api_key"] = "lllm_bench"
        overrides["endpoint"] = target
    elif sink == "otlp":
        os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = str(target)
        overrides["enable_persistence"] = False
    else:
        raise ValueError(f"unknown sink {sink!r}")

    if options.get("mode") == "export":
        return _export_only(options, overrides, n)
    provider = TracerProvider()  # a private provider: no sampler from the environment, nothing global
    pipeline = leanllm_otel.configure(
        tracer_provider=provider, instrument=False, otlp=(sink == "otlp"), shutdown_timeout_ms=120_000, **overrides
    )
    tracer = provider.get_tracer("leanllm-otel.benchmark")
    start_attributes = chat_start_attributes()
    end_attributes = chat_end_attributes()
    request_id_key = sc.LEANLLM_REQUEST_ID

    rss_samples: list[tuple[int, int]] = [(0, rss_kb())]
    step = max(1, n // 10)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for i in range(n):
        attributes = dict(start_attributes)
        attributes[request_id_key] = str(uuid.uuid4())
        span = tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=attributes)
        span.set_attributes(end_attributes)
        span.end()
        if (i + 1) % step == 0:
            rss_samples.append((i + 1, rss_kb()))
    produced_s = time.perf_counter() - t0
    flushed = pipeline.force_flush(600_000)
    total_s = time.perf_counter() - t0
    cpu_s = time.process_time() - cpu0
    rss_samples.append((n, rss_kb()))
    counters = pipeline.counters
    dropped = pipeline.dropped_events_count
    stored = _count_rows(overrides.get("database_url")) if sink in ("sqlite", "postgresql") else None
    pipeline.shutdown(30_000)
    exported = stored if stored is not None else n - dropped
    return {
        "sink": sink,
        "mode": "pipeline",
        "n": n,
        "queue_max_size": options.get("queue_max_size") or "default",
        "produced_per_s": n / produced_s,
        "events_per_s": exported / total_s,
        "total_s": total_s,
        "cpu_s": cpu_s,
        "flushed": flushed,
        "dropped": dropped,
        "exported": exported,
        "stored_rows": stored,
        "kept": counters.get("kept"),
        "peak_rss_kb": peak_rss_kb(),
        "rss_samples_kb": rss_samples,
    }


def _export_only(options: dict[str, Any], overrides: dict[str, Any], n: int) -> dict[str, Any]:
    """The export path alone: spans are made first (untimed), then one thread renders, maps and writes them in
    batches of ``batch_size``, as the batch worker would, with no producer competing for the GIL."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from leanllm_otel import semconv as sc
    from leanllm_otel.config import LeanLLMConfig
    from leanllm_otel.exporters.persistence import persistence_exporter
    from leanllm_otel.pipeline import otlp_exporter_from_env
    from leanllm_otel.processing.processor import LeanLLMSpanProcessor

    config = LeanLLMConfig.from_env(**overrides)
    processor = LeanLLMSpanProcessor()
    collector = InMemorySpanExporter()
    processor.add_span_processor(SimpleSpanProcessor(collector))  # receives the PendingSpans the queue would hold
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("leanllm-otel.benchmark")
    start_attributes = chat_start_attributes()
    end_attributes = chat_end_attributes()
    for _ in range(n):
        attributes = dict(start_attributes)
        attributes[sc.LEANLLM_REQUEST_ID] = str(uuid.uuid4())
        span = tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=attributes)
        span.set_attributes(end_attributes)
        span.end()
    spans = list(collector.get_finished_spans())
    collector.clear()
    if options["sink"] == "otlp":
        exporter = otlp_exporter_from_env({**os.environ, "OTEL_TRACES_EXPORTER": "otlp"})
    else:
        exporter = persistence_exporter(config)
    assert exporter is not None
    chain = processor.wrap_exporter(exporter)
    chain.export(spans[:1])  # connect, migrate: not part of the rate
    batch = config.batch_size
    rss_samples: list[tuple[int, int]] = [(0, rss_kb())]
    failed = 0
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for start in range(1, len(spans), batch):
        result = chain.export(spans[start : start + batch])
        if result.name != "SUCCESS":
            failed += len(spans[start : start + batch])
    total_s = time.perf_counter() - t0
    cpu_s = time.process_time() - cpu0
    rss_samples.append((n, rss_kb()))
    stored = _count_rows(overrides.get("database_url")) if options["sink"] in ("sqlite", "postgresql") else None
    exporter.shutdown()
    exported = (stored - 1) if stored is not None else (n - 1 - failed)
    return {
        "sink": options["sink"],
        "mode": "export",
        "n": n - 1,
        "batch_size": batch,
        "queue_max_size": "-",
        "produced_per_s": None,
        "events_per_s": exported / total_s,
        "total_s": total_s,
        "cpu_s": cpu_s,
        "cpu_per_event_us": cpu_s / max(1, n - 1) * 1e6,
        "dropped": failed,
        "exported": exported,
        "stored_rows": stored,
        "peak_rss_kb": peak_rss_kb(),
        "rss_samples_kb": rss_samples,
    }


def _count_rows(url: str | None) -> int | None:
    if not url:
        return None
    try:
        import sqlalchemy

        sync_url = url.replace("postgresql://", "postgresql+psycopg2://", 1) if url.startswith("postgresql") else url
        if url.startswith("postgresql"):
            return _count_rows_asyncpg(url)
        engine = sqlalchemy.create_engine(sync_url)
        with engine.connect() as connection:
            count = connection.execute(sqlalchemy.text("SELECT count(*) FROM leanllm_events")).scalar()
        engine.dispose()
        return int(count or 0)
    except Exception as exc:
        print(f"could not count rows: {exc}", file=sys.stderr)
        return None


def _count_rows_asyncpg(url: str) -> int:
    import asyncio

    import asyncpg

    async def count() -> int:
        connection = await asyncpg.connect(url)
        try:
            return int(await connection.fetchval("SELECT count(*) FROM leanllm_events"))
        finally:
            await connection.close()

    return asyncio.run(count())


if __name__ == "__main__":
    result = run(json.loads(sys.argv[1]))
    _PROTOCOL.write(json.dumps(result) + "\n")
    os._exit(0)
