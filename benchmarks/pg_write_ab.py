"""A/B of the PostgreSQL write inside one process: 512-span ``export()`` calls of the entry-point exporter, alternating
the multi-row ``INSERT ... VALUES`` with pre-ping (the write before finding 19) and the ``unnest`` write without
pre-ping (``store/pg_write.py``), batch by batch, so both see the same machine load.

    .venv/bin/python benchmarks/pg_write_ab.py [--batches 120] [--busy]

``--busy``: an application thread builds spans meanwhile (holds the GIL, as a serving application does).
Prints the median time per batch of each. It switches the two paths through private attributes: a measurement
tool, not an API.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the loopback servers
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from export_throughput import _producer
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.exporters.from_env import LeanLLMSpanExporter
from loopback.postgres import PostgresServer

OLD, NEW = "multi-row VALUES, pre-ping", "unnest, no pre-ping"


class _Collect:
    def __init__(self, keep: bool) -> None:
        self.spans: list[ReadableSpan] = []
        self.keep = keep

    def on_end(self, span: ReadableSpan) -> None:
        if self.keep:
            self.spans.append(span)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=120)
    parser.add_argument("--busy", action="store_true")
    args = parser.parse_args()
    server = PostgresServer().start()
    try:
        url = server.create_database()
        collect = _Collect(keep=True)
        produce = _producer("export", TracerProvider(), collect)  # type: ignore[arg-type]
        for i in range((args.batches + 1) * 512):
            produce(i)
        spans = collect.spans
        entry = LeanLLMSpanExporter(LeanLLMConfig(database_url=url))
        writer = entry.inner._writer  # type: ignore[attr-defined]
        writer.migrate(30)
        entry.export(spans[:512])
        pool = writer.database._engine.sync_engine.pool
        unnest = writer._unnest_insert
        stop = threading.Event()

        def application() -> None:
            make = _producer("export", TracerProvider(), _Collect(keep=False))  # type: ignore[arg-type]
            i = 0
            while not stop.is_set():
                make(i)
                i += 1
                if i % 50 == 0:
                    time.sleep(0.0005)  # an application that also waits on I/O

        if args.busy:
            threading.Thread(target=application, daemon=True).start()
        times: dict[str, list[float]] = {OLD: [], NEW: []}
        for batch in range(1, args.batches + 1):
            old = batch % 2 == 0
            writer._unnest_insert = (lambda: None) if old else unnest
            pool._pre_ping = old
            started = time.perf_counter()
            entry.export(spans[batch * 512 : (batch + 1) * 512])
            times[OLD if old else NEW].append(time.perf_counter() - started)
        stop.set()
        entry.shutdown()
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
        print(f"{args.batches} batches of 512, {'busy application thread' if args.busy else 'idle'}, load {load}")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"{name:<28} median {median * 1000:5.1f} ms/batch = {512 / median:>7,.0f} spans/s")
    finally:
        server.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
