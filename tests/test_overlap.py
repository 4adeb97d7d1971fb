"""OverlappingExporter: batches handed over while earlier ones are written, bounded, flushed, shut down, forked;
and the pipeline's SQL store uses it."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import leanllm_otel
from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.exporters.batching import LeanLLMBatchSpanProcessor
from leanllm_otel.exporters.overlap import OverlappingExporter
from leanllm_otel.store import EventStore
from loopback.events import make_llm_span


class GatedExporter(SpanExporter):
    """Each export waits for the gate; records how many ran at once and what it received."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.received: list[str] = []
        self.shut_down = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.gate.wait(10)
        with self.lock:
            self.running -= 1
            self.received.extend(span.name for span in spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shut_down = True


def _wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.005)


def test_export_hands_over_and_at_most_max_in_flight_run_at_once() -> None:
    inner = GatedExporter()
    overlapping = OverlappingExporter(inner, max_in_flight=2)
    assert overlapping.export([make_llm_span()]) is SpanExportResult.SUCCESS  # returns while the write waits
    assert overlapping.export([make_llm_span()]) is SpanExportResult.SUCCESS
    third = threading.Thread(target=overlapping.export, args=([make_llm_span()],))
    third.start()
    _wait_for(lambda: inner.running == 2)
    time.sleep(0.05)
    assert third.is_alive()  # the third batch waits for a free slot: backpressure, not an unbounded pile
    inner.gate.set()
    third.join(5)
    assert overlapping.force_flush(5000)
    assert inner.most_at_once == 2 and len(inner.received) == 3


def test_force_flush_waits_for_batches_in_flight_and_reports_a_timeout() -> None:
    inner = GatedExporter()
    overlapping = OverlappingExporter(inner)
    overlapping.export([make_llm_span()])
    assert overlapping.force_flush(50) is False  # still being written
    inner.gate.set()
    assert overlapping.force_flush(5000) is True
    assert len(inner.received) == 1


def test_shutdown_waits_then_shuts_the_wrapped_exporter_down() -> None:
    inner = GatedExporter()
    overlapping = OverlappingExporter(inner)
    overlapping.export([make_llm_span()])
    threading.Timer(0.1, inner.gate.set).start()
    overlapping.shutdown(timeout_millis=5000)
    assert inner.received and inner.shut_down
    overlapping.export([make_llm_span()])  # after shutdown: straight to the wrapped exporter (which counts it)
    assert len(inner.received) == 2
    assert overlapping.inner.shut_down is True  # the wrapped exporter is reached explicitly (no __getattr__)


def test_invalid_max_in_flight_is_refused() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        OverlappingExporter(GatedExporter(), max_in_flight=0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_with_nothing_in_flight() -> None:
    inner = GatedExporter()
    overlapping = OverlappingExporter(inner, max_in_flight=1)
    overlapping.export([make_llm_span()])  # held in flight by the gate in the parent
    pid = os.fork()
    if pid == 0:  # the child: the parent's writer thread does not exist here
        inner.gate.set()
        ok = overlapping.force_flush(2000) and overlapping.export([make_llm_span()]) is SpanExportResult.SUCCESS
        os._exit(0 if ok and overlapping.force_flush(2000) else 1)
    _, status = os.waitpid(pid, 0)
    inner.gate.set()
    assert os.WEXITSTATUS(status) == 0
    assert overlapping.force_flush(5000)


def test_batch_processor_flush_waits_for_the_overlapping_writes() -> None:
    inner = GatedExporter()
    processor = LeanLLMBatchSpanProcessor(inner, LeanLLMConfig(batch_size=1), concurrent_exports=2)
    for _ in range(2):
        processor.on_end(make_llm_span())
    assert processor.force_flush(100) is False  # both handed over, neither written yet
    inner.gate.set()
    assert processor.force_flush(5000) is True
    assert len(inner.received) == 2
    processor.shutdown()
    assert inner.shut_down


def test_the_pipeline_writes_its_sql_store_with_overlapping_batches(sqlite_url: str) -> None:
    provider = TracerProvider()
    pipeline = leanllm_otel.configure(tracer_provider=provider, database_url=sqlite_url, instrument=False,
                                      batch_size=2)
    try:
        store = pipeline.batch_processors[0]
        assert isinstance(store, LeanLLMBatchSpanProcessor)
        assert isinstance(store._worker_exporter, OverlappingExporter)
        tracer = provider.get_tracer("t")
        for _ in range(7):
            span = tracer.start_span("chat gpt-4o-mini")
            span.set_attributes(dict(make_llm_span().attributes or {}))
            span.end()
        assert pipeline.force_flush(10_000)
        with EventStore(sqlite_url) as events:
            assert events.count_events() == 7  # everything written once the flush returns
    finally:
        pipeline.shutdown(10_000)


def test_the_write_runs_with_instrumentation_suppressed_like_the_sdk_worker() -> None:
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled

    seen: list[bool] = []

    class Probe(GatedExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            seen.append(is_instrumentation_enabled())
            return SpanExportResult.SUCCESS

    overlapping = OverlappingExporter(Probe())
    overlapping.export([make_llm_span()])
    assert overlapping.force_flush(5000)
    assert seen == [False]  # its own database / HTTP calls must not become spans


def test_a_guarded_pipeline_keeps_its_sql_store_overlapping_and_interruptible(sqlite_url: str) -> None:
    # The guard wraps the store's exporter before the pipeline asks it what it can do: the wrapper must answer
    # for the SQL exporter (overlapping export, and the Delivery that shutdown closes to stop retries).
    from leanllm_otel.exporters.sql import SQLSpanExporter
    from leanllm_otel.guardrails.guard import GuardExporter

    provider = TracerProvider()
    pipeline = leanllm_otel.configure(
        tracer_provider=provider, database_url=sqlite_url, instrument=False, enforcement_policy="standard"
    )
    try:
        assert pipeline.guard is not None
        store = pipeline.batch_processors[0]
        assert isinstance(store, LeanLLMBatchSpanProcessor)
        assert isinstance(store._worker_exporter, OverlappingExporter)
        sql = pipeline.exporters[0]
        assert isinstance(sql, SQLSpanExporter)
        assert isinstance(store._exporter.inner, GuardExporter)  # type: ignore[attr-defined]
        assert store._exporter.delivery is sql.delivery  # type: ignore[attr-defined]
        closed: list[bool] = []
        sql.delivery.close = lambda: closed.append(True)  # type: ignore[method-assign]
        store._close_exporter()  # what a shutdown past its deadline does: stop the store's retries
        assert closed == [True]
    finally:
        pipeline.shutdown(10_000)


def test_every_wrapper_passes_the_shutdown_timeout_and_the_capabilities_through() -> None:
    from leanllm_otel.exporters.wrapping import WrappingExporter
    from leanllm_otel.guardrails.guard import GuardExporter
    from leanllm_otel.processing.rendering import ContentRenderingExporter, Renderer
    from leanllm_otel.settings import TelemetrySettings

    class Store(GatedExporter):
        supports_concurrent_export = True
        repairs_values = True

        def __init__(self) -> None:
            super().__init__()
            self.delivery = object()
            self.drops = object()
            self.timeouts: list[float] = []

        def shutdown(self, timeout_millis: float = 30000) -> None:  # type: ignore[override]
            self.timeouts.append(timeout_millis)

    store = Store()
    chain = ContentRenderingExporter(
        GuardExporter(OverlappingExporter(store), guard=None, wait_s=0.0),  # type: ignore[arg-type]
        Renderer(TelemetrySettings()),
    )
    assert chain.supports_concurrent_export and chain.repairs_values
    assert chain.delivery is store.delivery and chain.drops is store.drops
    chain.shutdown(timeout_millis=1234)
    assert store.timeouts == [1234]
    plain = GatedExporter()  # a shutdown() without a timeout parameter is called without one
    WrappingExporter(plain).shutdown(timeout_millis=5)
    assert plain.shut_down
    assert not WrappingExporter(plain).supports_concurrent_export and WrappingExporter(plain).delivery is None
