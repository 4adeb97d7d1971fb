"""``LeanLLMSpanProcessor``: the front of every export path.

It wraps the downstream processors (usually one ``BatchSpanProcessor`` per exporter), so what it drops or rewrites
never reaches any of them:

- sampling: the keep decision of ``sampling.span_decision`` (an error is always kept, even when the application's
  head sampler only recorded it, ``LeanLLMSampler``); end listeners receive each kept LLM span with its decision;
- content: a kept span carries its ``CallRecord`` to the export threads, where ``ContentRenderingExporter`` turns
  it into redacted attributes; a processor attached anywhere else never sees content;
- counters: kept, sampled out, head-sampled out, and queue / delivery drops (``DropCounter``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import SpanContext, TraceFlags

from leanllm_otel import semconv as sc
from leanllm_otel._internal import log_internal_error
from leanllm_otel.exporters.wrapping import copy_span
from leanllm_otel.processing.record import CallRecord, take_pending
from leanllm_otel.processing.rendering import ContentRenderingExporter, Renderer
from leanllm_otel.processing.routing import Router
from leanllm_otel.processing.sampling import SAMPLED_OUT, Keep, span_decision
from leanllm_otel.settings import TelemetrySettings


def attach_record(span: ReadableSpan, record: CallRecord | None) -> ReadableSpan:
    """Carry ``record`` beside ``span`` to the export threads (a plain Python attribute, never an OTel one)."""
    span.leanllm_record = record  # type: ignore[attr-defined]
    return span


def marked_sampled(span: ReadableSpan, record: CallRecord | None) -> ReadableSpan:
    """A copy of ``span`` flagged sampled (an error the head sampler only recorded), carrying ``record``."""
    context = span.context
    if context is not None and not context.trace_flags.sampled:
        sampled = SpanContext(
            context.trace_id,
            context.span_id,
            context.is_remote,
            TraceFlags(context.trace_flags | TraceFlags.SAMPLED),
            context.trace_state,
        )
        span = copy_span(span, context=sampled)
    return attach_record(span, record)


EndListener = Callable[[ReadableSpan, Keep], None]


class SpanCounters:
    """Thread-safe counters readable from Python (``processor.counters.snapshot()``)."""

    def __init__(self, settle: Callable[[], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._settle = settle
        self.kept = 0
        self.kept_errors = 0
        self.sampled_out = 0
        self.head_sampled_out = 0
        self._light_base = SAMPLED_OUT.value

    def add(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def snapshot(self) -> dict[str, int]:
        if self._settle is not None:
            self._settle()
        with self._lock:
            return {
                "kept": self.kept,
                "kept_errors": self.kept_errors,
                "sampled_out": self.sampled_out + SAMPLED_OUT.value - self._light_base,
                "head_sampled_out": self.head_sampled_out,
            }


class LeanLLMSpanProcessor(SpanProcessor):
    """Sampling, redaction hand-off and fan-out in front of the downstream processors."""

    def __init__(
        self,
        settings: TelemetrySettings | None = None,
        *,
        renderer: Renderer | None = None,
        drop_counter: Any = None,
    ) -> None:
        self.settings = settings or TelemetrySettings()
        self.renderer = renderer or Renderer(self.settings)
        self.counters = SpanCounters(self._settle)
        self._downstream: tuple[SpanProcessor, ...] = ()
        # Calls ended but not yet spans (deferred materialisation): drained before flush, shutdown, counters.
        self._pending: tuple[tuple[Callable[[], None], Callable[[], None]], ...] = ()
        self._lock = threading.Lock()
        self._drop_counter = drop_counter
        self._end_listeners: tuple[EndListener, ...] = ()
        self.router: Router | None = None  # per-client sinks (processing/routing.py), set when a client routes

    # --- wiring -----------------------------------------------------------------------------------------------
    def add_span_processor(self, processor: SpanProcessor) -> None:
        """Put ``processor`` behind this one. It receives kept spans with content already removed."""
        with self._lock:
            self._downstream = (*self._downstream, processor)

    def wrap_exporter(self, exporter: SpanExporter) -> ContentRenderingExporter:
        """Wrap ``exporter`` so the export thread renders redacted content before it sees each span."""
        return ContentRenderingExporter(exporter, self.renderer)

    def add_end_listener(self, listener: EndListener) -> None:
        """``listener(span, decision)`` on the caller's thread for every kept LLM span (after sampling, before
        export): ``decision`` is ``Keep.KEPT`` or ``Keep.KEPT_ERROR``; ``span.leanllm_record`` holds its content."""
        with self._lock:
            self._end_listeners = (*self._end_listeners, listener)

    def add_pending_source(self, drain: Callable[[], None], stop: Callable[[], None]) -> None:
        """Something holding ended calls that will reach ``on_end`` later; ``drain`` delivers them now."""
        with self._lock:
            self._pending = (*self._pending, (drain, stop))

    def _settle(self, stop: bool = False) -> None:
        for drain, halt in self._pending:
            try:
                (halt if stop else drain)()
            except Exception:
                log_internal_error("delivering deferred spans")

    @property
    def downstream(self) -> tuple[SpanProcessor, ...]:
        return self._downstream

    @property
    def drop_counter(self) -> Any:
        return self._drop_counter

    def remove_end_listener(self, listener: EndListener) -> None:
        """Stop calling ``listener`` (the same object given to :meth:`add_end_listener`)."""
        with self._lock:
            self._end_listeners = tuple(item for item in self._end_listeners if item is not listener)

    # --- SpanProcessor ----------------------------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for processor in self._downstream:
            processor.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            forwarded, decision = self._select(span)
        except Exception:
            if self._drop_counter is not None and sc.LEANLLM_REQUEST_ID in (span.attributes or {}):
                self._drop_counter.add(1, "internal_error")  # lost, but counted
            log_internal_error("sampling a span")
            return
        if forwarded is None:
            return
        router = self.router
        targets = self._downstream if router is None else router.targets(forwarded, self._downstream)
        for processor in targets:
            try:
                processor.on_end(forwarded)
            except Exception:
                log_internal_error("a downstream span processor failed")
        if decision is not None and self._end_listeners:
            for listener in self._end_listeners:
                try:
                    listener(forwarded, decision)
                except Exception:
                    log_internal_error("an end listener failed")

    def _select(self, span: ReadableSpan) -> tuple[ReadableSpan | None, Keep | None]:
        """The span to forward (None: dropped) and, for an LLM span that is kept, its decision."""
        decision = span_decision(span, self.settings.sampling_rate)
        if decision is None:
            return span, None  # not ours: pass through untouched (downstream batch processors honour the sampled flag)
        context = span.context
        if context is None:
            return None, None
        record = take_pending(context.span_id)
        self.counters.add(decision.value)
        if decision is Keep.KEPT_ERROR:
            return marked_sampled(span, record), decision
        if decision is Keep.KEPT:
            return attach_record(span, record), decision
        return None, None

    def shutdown(self) -> None:
        self._settle(stop=True)
        for processor in self._downstream:
            try:
                processor.shutdown()
            except Exception:
                log_internal_error("shutting down a downstream processor")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self._settle()
        ok = True
        for processor in self._downstream:
            try:
                ok = processor.force_flush(timeout_millis) and ok
            except Exception:
                log_internal_error("flushing a downstream processor")
                ok = False
        return ok
