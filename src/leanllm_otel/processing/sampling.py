"""Trace-coherent sampling decisions and the head-sampler wrapper that lets errors through.

The decision is a pure function of (trace id, rate), the same bound ``TraceIdRatioBased`` uses, so all LLM calls of
one trace are kept or dropped together and a higher rate keeps a superset of a lower one. The wrapper draws it at
span start (to skip content work) and the processor recomputes it at span end (to drop), with no shared state.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from leanllm_otel import semconv as sc

_TRACE_ID_LIMIT = (1 << 64) - 1


def keeps(trace_id: int, rate: float) -> bool:
    """True when a success in this trace is kept at ``rate``."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return (trace_id & _TRACE_ID_LIMIT) < round(rate * (_TRACE_ID_LIMIT + 1))


def clamp_rate(rate: float) -> float:
    return 0.0 if rate < 0.0 else 1.0 if rate > 1.0 else rate


class LeanLLMSampler(Sampler):
    """Wraps the application's head sampler so LLM spans are always *recorded*.

    For an LLM span the delegate's DROP becomes RECORD_ONLY: the span is recorded but not marked sampled, so no
    ordinary exporter sees it. ``LeanLLMSpanProcessor`` then forwards it only if it ended in error. Every other span
    gets the delegate's decision unchanged.
    """

    def __init__(self, delegate: Sampler) -> None:
        self._delegate = delegate

    @property
    def delegate(self) -> Sampler:
        return self._delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        result = self._delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        if result.decision is Decision.DROP and attributes and sc.LEANLLM_REQUEST_ID in attributes:
            parent_state = get_current_span(parent_context).get_span_context().trace_state
            return SamplingResult(Decision.RECORD_ONLY, attributes, trace_state or parent_state)
        return result

    def get_description(self) -> str:
        return f"LeanLLMSampler{{{self._delegate.get_description()}}}"
