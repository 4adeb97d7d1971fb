"""``GuardExporter``: on an export thread, copies what the guard thread concluded about a span onto it
(``leanllm.anomalies``, ``leanllm.budget.event``) and alerts on the findings the content renderer produced."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from leanllm_otel import semconv as sc
from leanllm_otel._internal import log_internal_error
from leanllm_otel.exporters.wrapping import WrappingExporter, copy_span

__all__ = ["GuardExporter"]


class Conclusions(Protocol):
    """What the exporter asks the guard (``Guard`` implements it)."""

    def results_for(self, span_id: int, wait_s: float = 0.0) -> dict[str, Any]: ...

    def finding_alert(self, attrs: Mapping[str, Any], model: str, event_id: Any) -> None: ...


class GuardExporter(WrappingExporter):
    """Adds the guard's conclusions to LLM spans (export thread), then hands them to the wrapped exporter."""

    def __init__(self, exporter: SpanExporter, guard: Conclusions, wait_s: float = 1.0) -> None:
        super().__init__(exporter)
        self.guard = guard
        self.wait_s = wait_s

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        out: list[ReadableSpan] = []
        for span in spans:
            attributes = span.attributes or {}
            if sc.LEANLLM_REQUEST_ID not in attributes or span.context is None:
                out.append(span)
                continue
            try:
                extra = self.guard.results_for(span.context.span_id, self.wait_s)
                if not attributes.get(sc.LEANLLM_SECURITY_BLOCKED):
                    self.guard.finding_alert(
                        attributes,
                        str(attributes.get(sc.GEN_AI_REQUEST_MODEL) or ""),
                        attributes.get(sc.LEANLLM_REQUEST_ID),
                    )
            except Exception:
                log_internal_error("adding guardrail results")
                extra = {}
            out.append(copy_span(span, attributes={**attributes, **extra}) if extra else span)
        return self.inner.export(out)
