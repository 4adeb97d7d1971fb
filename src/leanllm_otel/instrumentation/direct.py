"""A deferred success made straight into its ``ReadableSpan`` when our processor is the provider's only one.

The SDK's ``start_span`` / ``set_attributes`` / ``end`` build a ``_Span`` (a lock, ``BoundedAttributes`` validating
every value twice, two ``BoundedList``), replay the sampler, call every processor's ``on_start`` and then copy it
all into a ``ReadableSpan``. When the provider's processors are exactly one ``LeanLLMSpanProcessor`` in front of
batch processors (whose ``on_start`` does nothing) that work has no observer: the ``ReadableSpan`` the SDK would
hand to ``on_end`` is built directly (same name, ids, flags, parent, resource, scope, timestamps, attributes, with
values cleaned the SDK's way) and given to our processor's ``on_end``. Used only for successes, default span limits
(no value-length limit, the attribute count within the limit) and the SDK's no-op self-metrics; anything else, and
any attribute the fast check does not recognise, takes the SDK path (``DeferredStart.sdk_span``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import ReadableSpan, Tracer
from opentelemetry.trace import SpanKind, get_current_span

from leanllm_otel import otel_compat
from leanllm_otel._internal import log_internal_error

if TYPE_CHECKING:
    from leanllm_otel.instrumentation.deferred import DeferredStart


_clean_value = otel_compat.attribute_value_cleaner()
_ATOMIC = frozenset((str, bool, int, float))


def eligible(tracer: Tracer, sole: bool) -> bool:
    """Whether a deferred success may skip the SDK ``_Span`` (see the module docstring)."""
    if not sole or _clean_value is None:
        return False
    limits = otel_compat.tracer_span_limits(tracer)
    if limits is None or getattr(limits, "max_span_attribute_length", None) is not None:
        return False
    metrics = otel_compat.tracer_self_metrics(tracer)
    return metrics is None or type(metrics).__name__ == "NoOpTracerMetrics"


def _cleaned_into(target: dict[str, Any], attributes: Mapping[str, Any] | None) -> bool:
    """Copy ``attributes`` into ``target`` as the SDK would store them; False when one needs the SDK's own path."""
    if not attributes:
        return True
    assert _clean_value is not None
    for key, value in attributes.items():
        if type(key) is not str or not key:
            return False
        if value is None:
            continue  # the SDK drops None values
        if type(value) not in _ATOMIC:
            value = _clean_value(value)
            if value is None:
                return False
        # As BoundedAttributes: a key set again moves to the end. An ``in`` test, not ``pop``: no call for new keys.
        if key in target:
            del target[key]  # noqa: RUF051
        target[key] = value
    return True


class DirectSpan:
    """Stands in for the SDK span between materialisation and end: collects attributes, then ``end`` delivers the
    ``ReadableSpan`` to our processor (or, past the limits, replays everything through the SDK)."""

    __slots__ = ("_attributes", "_ok", "_raw", "_start", "_start_ns", "status")

    def __init__(self, start: DeferredStart, start_ns: int) -> None:
        self._start = start
        self._start_ns = start_ns
        self._attributes: dict[str, Any] = {}
        self._ok = _cleaned_into(self._attributes, start.attributes)
        self._raw: list[Mapping[str, Any]] = []  # what set_attributes was given, for the SDK path
        self.status = None  # read by Invocation._close (an error status is never set on this path)

    @property
    def attributes(self) -> Mapping[str, Any]:
        return self._attributes

    def get_span_context(self) -> Any:
        return self._start.span.get_span_context()

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self._raw.append(attributes)
        if self._ok:
            self._ok = _cleaned_into(self._attributes, attributes)

    def end(self, end_time: int) -> None:
        start = self._start
        tracer = start.deferral.tracer
        limit = getattr(otel_compat.tracer_span_limits(tracer), "max_span_attributes", None)
        enabled = otel_compat.tracer_enabled(tracer)
        if not self._ok or (limit is not None and len(self._attributes) > limit) or not enabled:
            span = start.sdk_span(self._start_ns)
            for attributes in self._raw:
                span.set_attributes(attributes)
            span.end(end_time=end_time)
            return
        parent = get_current_span(start.parent_context).get_span_context()
        readable = ReadableSpan(
            name=start.name,
            context=start.span.get_span_context(),
            parent=parent if parent.is_valid else None,
            resource=tracer.resource,
            attributes=self._attributes,
            kind=SpanKind.CLIENT,
            start_time=self._start_ns,
            end_time=end_time,
            instrumentation_info=tracer.instrumentation_info,
            instrumentation_scope=otel_compat.tracer_scope(tracer),
        )
        try:
            start.deferral.processor.on_end(readable)
        except Exception:
            log_internal_error("delivering a deferred span")
