"""``OverlappingExporter``: the batch processor hands over the next batch while the previous one is still written.

The SDK's batch worker calls ``export()`` one batch at a time and waits for it. For the SQL store half of that
wait is the database working on another core (SQLite's step, the PostgreSQL server) while this process has
nothing to do; mapping the next batch meanwhile raises the export path's throughput (measured by
``benchmarks/export_throughput.py``). Only for exporters whose ``export`` is safe to call
from several threads at once (``SQLSpanExporter``); the batch processor opts in per exporter.

``export()`` returns once the batch is handed over (``SUCCESS``), blocking while ``max_in_flight`` batches are
still being written; what happens to the batch afterwards is the wrapped exporter's to count (its drops).
``force_flush()`` waits for every batch handed over; ``shutdown()`` waits (bounded), then shuts the wrapped
exporter down. After ``fork()`` the child starts with nothing in flight.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence

from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from leanllm_otel.exporters.wrapping import WrappingExporter, shutdown_exporter

_logger = logging.getLogger(__name__)


class OverlappingExporter(WrappingExporter):
    """Runs up to ``max_in_flight`` ``export`` calls of ``exporter`` at once, each on its own short-lived thread."""

    def __init__(self, exporter: SpanExporter, max_in_flight: int = 2) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        super().__init__(exporter)
        self.max_in_flight = max_in_flight
        self._closed = False
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._in_flight = 0
        self._changed = threading.Condition(threading.Lock())

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._pid != os.getpid():  # a forked child: the parent's writer threads do not exist here
            self._reset()
        if self._closed:
            return self.inner.export(spans)  # the wrapped exporter counts what arrives after shutdown
        with self._changed:
            self._changed.wait_for(lambda: self._in_flight < self.max_in_flight)
            self._in_flight += 1
        batch = list(spans)
        try:
            threading.Thread(target=self._write, args=(batch,), name="leanllm-export", daemon=True).start()
        except RuntimeError:  # no thread can be started (interpreter shutting down): write it here
            self._finished()
            return self.inner.export(batch)
        return SpanExportResult.SUCCESS

    def _write(self, batch: list[ReadableSpan]) -> None:
        try:
            with suppress_instrumentation():  # as the SDK's worker does: the export's own I/O is not traced
                self.inner.export(batch)
        except Exception:  # exporters must not raise; if one does, the batch is its to count
            _logger.exception("leanllm-otel: export failed")
        finally:
            self._finished()

    def _finished(self) -> None:
        with self._changed:
            self._in_flight -= 1
            self._changed.notify_all()

    def _wait_idle(self, timeout_s: float) -> bool:
        if self._pid != os.getpid():
            self._reset()
        with self._changed:
            return self._changed.wait_for(lambda: self._in_flight == 0, timeout_s)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait until every batch handed over is written (or given up on); False if the time ran out."""
        started = time.monotonic()
        if not self._wait_idle(timeout_millis / 1000.0):
            return False
        remaining_ms = max(0, int(timeout_millis - (time.monotonic() - started) * 1000))
        return self.inner.force_flush(remaining_ms) is not False  # the SDK's base class returns None

    def shutdown(self, timeout_millis: float | None = None) -> None:
        self._closed = True
        if not self._wait_idle((30000 if timeout_millis is None else timeout_millis) / 1000.0):
            _logger.warning("leanllm-otel: %d export(s) still running at shutdown", self._in_flight)
        shutdown_exporter(self.inner, timeout_millis)
