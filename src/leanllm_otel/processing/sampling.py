"""The keep decision, the sampled-out count, and the head-sampler wrapper that lets errors through.

:func:`decide` is the one rule for whether an LLM call is kept (:class:`Keep`): an error always; a success the
application's head sampler dropped never; otherwise the draw :func:`keeps`, a pure function of (trace id, rate),
the same bound ``TraceIdRatioBased`` uses, so all LLM calls of one trace are kept or dropped together and a higher
rate keeps a superset of a lower one. The invocation draws it at span start (to skip content work; recorded on the
span as ``leanllm.sampled`` when the rate is below 1), the processor (:func:`span_decision`) follows it at span
end, and so does the entry-point exporter; the client hears the processor's decision (its end listener) and
applies :func:`span_decision` itself only when no leanllm processor sees its spans: no one else re-decides.

A leaf module (opentelemetry and ``semconv`` only): the hot path imports it, not the processor.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from enum import Enum

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, StatusCode, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from leanllm_otel import otel_compat
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


class Keep(Enum):
    """What became of an LLM call; the value names its counter (``LeanLLMSpanProcessor.counters``)."""

    KEPT = "kept"
    KEPT_ERROR = "kept_errors"
    SAMPLED_OUT = "sampled_out"
    HEAD_SAMPLED_OUT = "head_sampled_out"

    @property
    def kept(self) -> bool:
        return self is Keep.KEPT or self is Keep.KEPT_ERROR


def decide(
    *, failed: bool, head_sampled: bool = True, drawn: bool | None = None, trace_id: int = 0, rate: float = 1.0
) -> Keep:
    """Whether an LLM call is kept: an error always; a success only when the head sampler kept its trace
    (``head_sampled``) and the draw did: ``drawn`` when it was drawn at start, else :func:`keeps` now."""
    if failed:
        return Keep.KEPT_ERROR
    if not head_sampled:
        return Keep.HEAD_SAMPLED_OUT
    if drawn is None:
        drawn = keeps(trace_id, rate)
    return Keep.KEPT if drawn else Keep.SAMPLED_OUT


def span_decision(span: ReadableSpan, default_rate: float) -> Keep | None:
    """:func:`decide` for an ended span, from what the invocation recorded on it; None for a span that is not an
    LLM call's (those follow the application's head sampler alone)."""
    attributes = otel_compat.span_attributes(span)
    if sc.LEANLLM_REQUEST_ID not in attributes:
        return None
    failed = span.status.status_code is StatusCode.ERROR
    decided = attributes.get(sc.LEANLLM_SAMPLED)
    drawn = None if decided is None else bool(decided)
    context = span.context
    if context is None:  # no trace id to draw from: what was drawn at start, else kept
        return decide(failed=failed, drawn=True if drawn is None else drawn)
    rate = attributes.get(sc.LEANLLM_SAMPLING_RATE, default_rate)
    return decide(
        failed=failed,
        head_sampled=context.trace_flags.sampled,
        drawn=drawn,
        trace_id=context.trace_id,
        rate=float(rate),
    )


class _Tally:
    """A thread-safe process-wide count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> None:
        with self._lock:
            self.value += 1


# Calls sampled out at start never become SDK spans, so no processor sees them: the invocation counts them here,
# and every processor's ``counters`` reports those counted since it was created (one pipeline per process is the
# norm).
SAMPLED_OUT = _Tally()


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
