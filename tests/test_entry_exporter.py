"""The ``leanllm`` entry-point exporter inside a plain SDK ``BatchSpanProcessor`` (default settings), as another
configurator builds it: every span lands exactly once, flushes wait for writes in flight, and what a shutdown
cannot wait for is counted as dropped, never silently lost."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.exporters.from_env import LeanLLMSpanExporter
from leanllm_otel.store import EventStore
from loopback.events import make_llm_span, make_plain_span

SPANS = 1500  # several SDK batches of 512, the last one short


def _stored(url: str) -> tuple[int, int]:
    """(rows, distinct event ids) in the store."""
    with EventStore(url) as store:
        events = store.list_events(limit=10 * SPANS)
        return store.count_events(), len({event.event_id for event in events})


def _exporter(url: str) -> LeanLLMSpanExporter:
    exporter = LeanLLMSpanExporter(LeanLLMConfig(database_url=url))
    exporter.inner.migrate(30)  # type: ignore[attr-defined]  # the schema exists before a test locks the table
    return exporter


def _wait_until_writing(exporter: LeanLLMSpanExporter) -> None:
    deadline = time.monotonic() + 30
    while exporter._exports._count == 0:
        assert time.monotonic() < deadline, "no export started"
        time.sleep(0.01)


@contextmanager
def _sqlite_write_lock(url: str) -> Iterator[threading.Event]:
    """Holds SQLite's write lock (readers still read, WAL) until the yielded event is set."""
    connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False)
    connection.execute("BEGIN EXCLUSIVE")
    release = threading.Event()
    try:
        yield release
    finally:
        release.wait()
        connection.execute("COMMIT")
        connection.close()


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_plain_batch_processor_writes_every_span_exactly_once(store: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("sqlite_url" if store == "sqlite" else "postgres_url")
    exporter = _exporter(url)
    processor = BatchSpanProcessor(exporter)  # the SDK's defaults: batches of 512, queue 2048
    provider = TracerProvider()
    provider.add_span_processor(processor)
    for index in range(SPANS):
        processor.on_end(make_llm_span(labels={"n": str(index)}))
        if index % 100 == 0:
            processor.on_end(make_plain_span())  # not an LLM span: not stored, not counted
    assert provider.force_flush()
    assert _stored(url) == (SPANS, SPANS)
    provider.shutdown()
    assert exporter.drops.total == 0
    assert _stored(url) == (SPANS, SPANS)


def test_force_flush_waits_for_the_export_in_flight(sqlite_url: str) -> None:
    exporter = _exporter(sqlite_url)
    processor = BatchSpanProcessor(exporter)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    seen_after_flush: list[tuple[int, int]] = []
    try:
        with _sqlite_write_lock(sqlite_url) as release:
            for _ in range(600):  # the worker starts exporting at 512 and waits on the lock
                processor.on_end(make_llm_span())
            _wait_until_writing(exporter)

            def flush() -> None:
                provider.force_flush()
                seen_after_flush.append(_stored(sqlite_url))

            flusher = threading.Thread(target=flush)
            flusher.start()
            time.sleep(0.3)  # a flush that did not wait would read the store now, with the lock still held
            release.set()
        flusher.join(60)
        assert seen_after_flush == [(600, 600)]
        assert exporter.force_flush()  # the exporter's own flush waits too (nothing left)
    finally:
        provider.shutdown()
    assert exporter.drops.total == 0


def test_shutdown_waits_for_the_export_in_flight_within_its_timeout(sqlite_url: str) -> None:
    exporter = _exporter(sqlite_url)
    processor = BatchSpanProcessor(exporter)
    with _sqlite_write_lock(sqlite_url) as release:
        for _ in range(512):
            processor.on_end(make_llm_span())
        _wait_until_writing(exporter)
        stopper = threading.Thread(target=exporter.shutdown, kwargs={"timeout_millis": 20_000})
        stopper.start()  # what the SDK calls once its worker is done or its own wait ran out
        time.sleep(0.3)
        release.set()
    stopper.join(60)
    assert _stored(sqlite_url) == (512, 512)
    assert exporter.drops.total == 0
    processor.shutdown()


def test_what_shutdown_cannot_wait_for_is_counted_as_dropped(postgres_url: str) -> None:
    exporter = _exporter(postgres_url)
    processor = BatchSpanProcessor(exporter)
    locked, release = threading.Event(), threading.Event()

    async def hold_table_lock() -> None:
        import asyncpg

        connection = await asyncpg.connect(postgres_url)
        try:
            async with connection.transaction():
                await connection.execute("LOCK TABLE leanllm_events IN EXCLUSIVE MODE")  # reads pass, inserts wait
                locked.set()
                await asyncio.get_running_loop().run_in_executor(None, release.wait)
        finally:
            await connection.close()

    holder = threading.Thread(target=asyncio.run, args=(hold_table_lock(),))
    holder.start()
    try:
        assert locked.wait(30)
        for _ in range(512):
            processor.on_end(make_llm_span())
        _wait_until_writing(exporter)
        exporter.shutdown(timeout_millis=300)  # the writes in flight cannot finish in time
        dropped = exporter.drops.by_reason()
        stored, _ = _stored(postgres_url)
        assert stored + sum(dropped.values()) == 512
        assert stored < 512 and dropped
    finally:
        release.set()
        holder.join(30)
    processor.shutdown()
    assert _stored(postgres_url)[0] == stored  # the cancelled writes never land later (no double count)
