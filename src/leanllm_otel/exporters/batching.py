"""``LeanLLMBatchSpanProcessor``: the SDK batch processor with leanllm's settings, drop accounting and a bounded
shutdown.

- Queue (``queue_max_size``): when full the SDK deque drops the *oldest* span; each such drop is counted in a
  :class:`DropCounter` with reason ``"queue_full"`` (``on_dropped_events`` fires).
- ``batch_size`` is a flush trigger (the worker wakes as soon as that many spans are queued) and the batch cap;
  ``flush_interval_ms`` flushes whatever is queued on a timer.
- ``concurrent_exports`` > 1 (for exporters safe to call from several threads, see ``overlap.py``): the worker
  hands the next batch over while earlier ones are still written; ``force_flush`` waits for them too.
- ``shutdown()`` takes at most ``shutdown_timeout_ms`` even when the exporter hangs: it closes the exporter, whose
  ``Delivery.close()`` interrupts any retry backoff.

Drop counting hooks the SDK's processor-metrics object (``BatchProcessor._metrics.drop_items``, reached through
``otel_compat``), the one place the SDK itself reports queue-full drops. If a future SDK moves it, a fallback counts
in ``on_end`` by looking at the queue length before each enqueue; if neither is available a warning says drops are
not counted.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from leanllm_otel import otel_compat
from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.exporters.delivery import DropCounter
from leanllm_otel.exporters.overlap import OverlappingExporter

_logger = logging.getLogger(__name__)

REASON_QUEUE_FULL = "queue_full"


class _CountingMetrics:
    """Wraps the SDK's processor metrics: forwards every call, and counts drops into a ``DropCounter``."""

    def __init__(self, inner: Any, drops: DropCounter) -> None:
        self._inner = inner
        self._drops = drops

    def register_queue_size(self, get_queue_size: Any) -> None:
        self._inner.register_queue_size(get_queue_size)

    def drop_items(self, count: int, error_type: str = REASON_QUEUE_FULL) -> None:
        try:
            self._inner.drop_items(count, error_type)
        finally:
            self._drops.add(count, error_type)

    def finish_items(self, count: int) -> None:
        self._inner.finish_items(count)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class LeanLLMBatchSpanProcessor(BatchSpanProcessor):
    """``BatchSpanProcessor`` configured from :class:`LeanLLMConfig`, counting queue drops, bounded shutdown."""

    def __init__(
        self,
        span_exporter: SpanExporter,
        config: LeanLLMConfig | None = None,
        *,
        drops: DropCounter | None = None,
        max_queue_size: int | None = None,
        batch_size: int | None = None,
        flush_interval_ms: float | None = None,
        export_timeout_ms: float | None = None,
        shutdown_timeout_ms: float | None = None,
        concurrent_exports: int = 1,
    ) -> None:
        config = config if config is not None else LeanLLMConfig()
        queue_size = max_queue_size if max_queue_size is not None else config.queue_max_size
        batch = batch_size if batch_size is not None else config.batch_size
        self._worker_exporter: SpanExporter = (
            OverlappingExporter(span_exporter, concurrent_exports) if concurrent_exports > 1 else span_exporter
        )
        super().__init__(
            self._worker_exporter,
            max_queue_size=queue_size,
            schedule_delay_millis=flush_interval_ms if flush_interval_ms is not None else config.flush_interval_ms,
            max_export_batch_size=min(batch, queue_size),
            export_timeout_millis=export_timeout_ms if export_timeout_ms is not None else config.export_timeout_ms,
        )
        exporter_drops = getattr(span_exporter, "drops", None)
        if drops is None:
            drops = exporter_drops if isinstance(exporter_drops, DropCounter) else DropCounter()
        self.drops = drops
        self._shutdown_timeout_ms = (
            shutdown_timeout_ms if shutdown_timeout_ms is not None else config.shutdown_timeout_ms
        )
        self._exporter = span_exporter
        self._count_in_on_end = not self._hook_metrics()
        self._fallback_queue: Any = otel_compat.batch_queue(self)
        if self._count_in_on_end and self._fallback_queue is None:
            _logger.warning("leanllm-otel: this SDK version hides its batch queue; queue-full drops are not counted")
        self._shutdown_lock = threading.Lock()
        self._is_shut_down = False

    def _hook_metrics(self) -> bool:
        metrics = otel_compat.batch_metrics(self)
        if metrics is None or not callable(getattr(metrics, "drop_items", None)):
            return False
        otel_compat.set_batch_metrics(self, _CountingMetrics(metrics, self.drops))
        return True

    def on_end(self, span: ReadableSpan) -> None:
        if self._count_in_on_end and self._fallback_queue is not None and span.context is not None:
            queue = self._fallback_queue
            if span.context.trace_flags.sampled and queue.maxlen is not None and len(queue) >= queue.maxlen:
                self.drops.add(1, REASON_QUEUE_FULL)
        super().on_end(span)

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """Export what is queued, and wait for exports still running (``concurrent_exports`` > 1)."""
        started = time.monotonic()
        if not super().force_flush(timeout_millis):
            return False
        if self._worker_exporter is self._exporter:
            return True
        budget_ms = 30000 if timeout_millis is None else timeout_millis
        remaining_ms = max(0, int(budget_ms - (time.monotonic() - started) * 1000))
        return self._worker_exporter.force_flush(remaining_ms)

    def shutdown(self) -> None:
        """Flush what is queued and stop, within ``shutdown_timeout_ms`` whatever the exporter does."""
        with self._shutdown_lock:
            if self._is_shut_down:
                return
            self._is_shut_down = True
        timeout_ms = max(0.0, float(self._shutdown_timeout_ms))
        worker = threading.Thread(
            target=self._shutdown_worker, args=(timeout_ms,), name="LeanLLMBatchShutdown", daemon=True
        )
        worker.start()
        worker.join(timeout_ms / 1000.0 + 0.05)
        if worker.is_alive():
            # The exporter is stuck inside a backend call: stop its retries and move on.
            _logger.warning("leanllm-otel: shutdown exceeded %.0f ms; abandoning the export in flight", timeout_ms)
            self._close_exporter()

    def _shutdown_worker(self, timeout_ms: float) -> None:
        processor = otel_compat.batch_processor(self)
        try:
            if processor is not None:
                processor.shutdown(timeout_millis=int(timeout_ms))
                worker = otel_compat.batch_worker_thread(self)
                if worker is not None and worker.is_alive():
                    # The SDK gave up waiting for an export stuck in the backend; say so, and count what is left.
                    queue = otel_compat.batch_queue(self)
                    left = len(queue) if queue is not None else 0
                    _logger.warning(
                        "leanllm-otel: shutdown exceeded %.0f ms; abandoning the export in flight and %d queued spans",
                        timeout_ms,
                        left,
                    )
                    if left:
                        self.drops.add(left, "shutdown_timeout")
            else:  # pragma: no cover - older SDKs
                super().shutdown()  # type: ignore[no-untyped-call]
        except Exception:
            _logger.exception("leanllm-otel: batch processor shutdown failed")

    def _close_exporter(self) -> None:
        delivery = getattr(self._exporter, "delivery", None)
        close = getattr(delivery, "close", None)
        if callable(close):
            close()
