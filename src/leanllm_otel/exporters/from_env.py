"""``LeanLLMSpanExporter``: the ``leanllm`` traces exporter of ``OTEL_TRACES_EXPORTER``.

Constructible with no arguments (``opentelemetry-instrument`` does that); ``LEANLLM_DATABASE_URL`` selects the SQL
store and ``LEANLLM_API_KEY`` the LeanLLM service. It delegates everything to that exporter.

Behind leanllm's configurator (the default, or ``OTEL_PYTHON_CONFIGURATOR=leanllm``) it receives spans that
``LeanLLMSpanProcessor`` already sampled and rendered. When another configurator built the SDK (e.g.
``opentelemetry-distro``'s, which wins when both are installed and none is named), it is fed by a plain batch
processor: it then still drops sampled-out LLM successes itself (it follows the decision recorded on the span, or
recomputes it from trace id and rate, so applying it twice changes nothing), and warns that content capture and
error rescue need ours.

``export()`` returns only once the batch is written or counted as dropped: a plain SDK ``BatchSpanProcessor``
never calls its exporter's ``force_flush`` and only waits for ``export()``, so nothing may stay in flight after it
returns. (Handing the batch to a writer thread, as ``OverlappingExporter`` does behind our own processor, would let
``provider.force_flush()`` return before the rows exist; cutting each batch into pieces written by two threads
measured slower, see ``benchmarks/README.md``.) ``force_flush()`` waits for exports still running; ``shutdown()``
waits for them within its timeout, then stops the store exporter, which cancels a write still waited for and
counts it in its drop counters (``drops``) before ``shutdown()`` returns.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from leanllm_otel.active import leanllm_processor_in_front
from leanllm_otel.config import ConfigError, LeanLLMConfig
from leanllm_otel.exporters.persistence import persistence_exporter
from leanllm_otel.exporters.wrapping import WrappingExporter, shutdown_exporter
from leanllm_otel.processing.sampling import span_decision

logger = logging.getLogger(__name__)


def _behind_leanllm_processor() -> bool:
    return leanllm_processor_in_front()


def _kept(span: ReadableSpan, default_rate: float) -> bool:
    decision = span_decision(span, default_rate)
    return decision is None or decision.kept


_SETTLE_S = 1.0


class _Running:
    """Counts the ``export()`` calls running now (a context manager around each), so shutdown can wait for them."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._count = 0
        self._changed = threading.Condition(threading.Lock())

    def __enter__(self) -> None:
        if self._pid != os.getpid():  # a forked child: the parent's exports do not run here
            self._reset()
        with self._changed:
            self._count += 1

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self._count -= 1
            self._changed.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._count == 0 or self._pid != os.getpid(), timeout_s)


class LeanLLMSpanExporter(WrappingExporter):
    """The SQL or service exporter chosen by ``LEANLLM_*``."""

    def __init__(self, config: LeanLLMConfig | None = None) -> None:
        self.config = config if config is not None else LeanLLMConfig.from_env()
        inner = persistence_exporter(self.config) if self.config.enable_persistence else None
        if inner is None:
            raise ConfigError(
                "OTEL_TRACES_EXPORTER=leanllm needs LEANLLM_DATABASE_URL (SQL store) or LEANLLM_API_KEY "
                "(LeanLLM service), and LEANLLM_ENABLE_PERSISTENCE not false"
            )
        super().__init__(inner)
        self._exports = _Running()
        if not _behind_leanllm_processor():
            logger.warning(
                "leanllm-otel: the `leanllm` traces exporter runs without leanllm's span processor (another "
                "OpenTelemetry configurator, e.g. opentelemetry-distro's, set up the SDK): sampling is applied "
                "here, but no content is captured and OTLP exporters are not sampled. Set "
                "OTEL_PYTHON_CONFIGURATOR=leanllm."
            )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        rate = self.config.sampling_rate
        kept = [span for span in spans if _kept(span, rate)]
        if not kept:
            return SpanExportResult.SUCCESS
        with self._exports:
            return self.inner.export(kept)

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Wait (at most ``timeout_millis``, default 30 s) for an export still running, then stop the store exporter;
        what had not landed by then is counted in its drop counters before this returns."""
        budget_ms = 30000.0 if timeout_millis is None else timeout_millis
        started = time.monotonic()
        if not self._exports.wait_idle(budget_ms / 1000.0):
            logger.warning("leanllm-otel: an export was still running when the shutdown timeout passed")
        shutdown_exporter(self.inner, max(0.0, budget_ms - (time.monotonic() - started) * 1000))
        # Stopping the store cancelled a write still waited for: its export counts the drop as it returns.
        self._exports.wait_idle(_SETTLE_S)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait for exports still running, then flush the store exporter; False when the time ran out."""
        started = time.monotonic()
        if not self._exports.wait_idle(timeout_millis / 1000.0):
            return False
        return super().force_flush(max(0, int(timeout_millis - (time.monotonic() - started) * 1000)))
