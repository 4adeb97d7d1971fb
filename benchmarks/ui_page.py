"""How long the viewer takes to serve a 50-event page of a 100,000-event store, over real HTTP.

    .venv/bin/python benchmarks/ui_page.py [--events 100000] [--repeat 25] [--backends sqlite,postgres]

Seeds a store through the real SQL exporter (seven days of events, a tenth with content so the search index has
text, a few models and labels, some errors), starts ``UIServer`` on loopback and times, with httpx, each page
``--repeat`` times: the first page, a page half-way down (keyset cursor), filters (model, label, errors, content
search), one event with its lineage, and the overview: over the last 24 hours (its default window, about 14,000 of
the events), over all time, all time with a label filter; then ``EventStore.stats()`` over all time (what
``leanllm-otel stats`` runs: every percentile per model and label) outside HTTP. The baseline, measured in
the same run on the same store, is the bare query a page needs (``SELECT`` the row columns ``ORDER BY timestamp
DESC LIMIT 50`` plus ``count(*)``) on a plain SQLAlchemy engine: the ratio says what templating, HTTP and the
viewer's extra queries (count, scores, menus) add. Medians and p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the loopback servers

import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from leanllm_otel.exporters.sql import SQLSpanExporter  # noqa: E402
from leanllm_otel.store import EventStore  # noqa: E402
from leanllm_otel.store import engine as db  # noqa: E402
from leanllm_otel.store.schema import events  # noqa: E402
from leanllm_otel.ui import UIServer  # noqa: E402
from loopback.events import fast_config, make_llm_span  # noqa: E402
from loopback.viewer_data import conversation  # noqa: E402

_MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-haiku", "claude-3-5-sonnet", "gemini-1.5-flash")
_WORDS = ("invoice", "refund", "weather", "quokka", "translation", "summary", "python", "contract")


def seed(url: str, count: int) -> str:
    """Write ``count`` events; returns the id of one event that has a parent and siblings (for the event page)."""
    exporter = SQLSpanExporter(config=fast_config(url, batch_size=1000))
    now = datetime.now(timezone.utc)
    step = timedelta(days=7) / count
    batch: list[Any] = []
    try:
        for i in range(count):
            extra: dict[str, Any] = {"leanllm.user_id": f"user-{i % 50}"}
            if i % 10 == 0:
                extra.update(conversation(f"please help with the {_WORDS[i % len(_WORDS)]} number {i}"))
            if i % 5 == 1:
                extra["leanllm.parent_request_id"] = f"bench-{i - 1:06d}"
            batch.append(make_llm_span(
                event_id=f"bench-{i:06d}", model=_MODELS[i % len(_MODELS)], start=now - step * i,
                labels={"feature": ("search", "chat", "agent")[i % 3], "tenant": f"t{i % 20}"},
                error="RateLimitError" if i % 97 == 0 else None, correlation_id=f"conv-{i // 5}",
                latency_ms=80.0 + (i % 400), cost=0.0001 * (i % 30), extra=extra,
            ))  # fmt: skip
            if len(batch) == 1000:
                exporter.export(batch)
                batch = []
        if batch:
            exporter.export(batch)
    finally:
        exporter.shutdown()
    return f"bench-{count // 2 + 1:06d}"


def _times(call: Any, repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def baseline(url: str, repeat: int) -> tuple[float, float]:
    c = events.c
    columns = (c.event_id, c.timestamp, c.model, c.provider, c.operation, c.status, c.error_kind, c.error_type,
               c.latency_ms, c.time_to_first_token_ms, c.input_tokens, c.output_tokens, c.cost, c.labels, c.stream,
               c.recorded_at, c.end_timestamp)  # fmt: skip

    async def run() -> tuple[float, float]:
        engine = db.create_engine(db.async_database_url(url))
        samples = []
        try:
            for _ in range(repeat + 2):
                started = time.perf_counter()
                async with engine.connect() as connection:
                    statement = select(*columns).order_by(c.timestamp.desc(), c.event_id.desc()).limit(51)
                    list(await connection.execute(statement))
                    (await connection.execute(select(func.count()).select_from(events))).scalar_one()
                samples.append((time.perf_counter() - started) * 1000)
        finally:
            await engine.dispose()
        samples = sorted(samples[2:])
        return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]

    return asyncio.run(run())


def measure(url: str, count: int, repeat: int) -> list[tuple[str, float, float]]:
    started = time.perf_counter()
    event_id = seed(url, count)
    print(f"  seeded {count:,} events in {time.perf_counter() - started:.1f} s")
    base = baseline(url, repeat)
    rows = [("baseline: bare query (rows + count)", *base)]
    with UIServer(url, port=0, emitter=None) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        half = http.get("/", params={"limit": "1"}).text  # warm up; then find a cursor half-way down
        assert "bench-" in half
        cursor = f"{(datetime.now(timezone.utc) - timedelta(days=3.5)).isoformat()}~bench-999999"
        pages = {
            "first page": ("/", {}),
            "page half-way down (keyset)": ("/", {"before": cursor}),
            "model filter": ("/", {"model": "claude-3-haiku"}),
            "label filter": ("/", {"label": "tenant=t7"}),
            "errors only": ("/", {"status": "error"}),
            "content search": ("/", {"q": "quokka"}),
            "one event (lineage, scores)": (f"/events/{event_id}", {}),
            # "since" spells the default window so that the same page can be timed on versions without one.
            "overview, last 24 h (default)": ("/stats", {"since": "24h"}),
            "overview, all time": ("/stats", {"window": "all"}),
            "overview, all time, label filter": ("/stats", {"window": "all", "label": "tenant=t7"}),
        }
        for name, (path, params) in pages.items():
            response = http.get(path, params=params)
            assert response.status_code == 200, (name, response.status_code)
            repeats = max(3, repeat // 5) if path == "/stats" else repeat
            rows.append((name, *_times(lambda p=path, q=params: http.get(p, params=q), repeats)))
    with EventStore(url) as store:
        store.stats()
        rows.append(("EventStore.stats(), all time (CLI)", *_times(store.stats, max(3, repeat // 5))))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=25)
    parser.add_argument("--backends", default="sqlite")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        server = None
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                url = f"sqlite:///{tmp}/ui-bench.db"
            else:
                from loopback.postgres import PostgresServer

                server = PostgresServer().start()
                url = server.create_database()
            try:
                print(f"\n{backend}: {args.events:,} events, {args.repeat} requests per page")
                rows = measure(url, args.events, args.repeat)
            finally:
                if server is not None:
                    server.cleanup()
        base = rows[0][1]
        print(f"  {'page':<38} {'median ms':>10} {'p95 ms':>8} {'x baseline':>11}")
        for name, median, p95 in rows:
            print(f"  {name:<38} {median:>10.1f} {p95:>8.1f} {median / base:>11.1f}")


if __name__ == "__main__":
    main()
