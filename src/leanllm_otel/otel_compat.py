"""Everything leanllm-otel assumes about the OpenTelemetry SDK's private internals, in one place.

Checked against opentelemetry-sdk 1.40.0 and 1.45.2 (the ``otel-oldest`` and pinned cells of the version matrix in
``noxfile.py``). Below 1.40 ``_initialize_components`` has no ``span_processors`` / ``export_span_processor``
arguments, so the zero-code configurator cannot put exporters behind ``LeanLLMSpanProcessor``: the package requires
``opentelemetry-sdk>=1.40``.

- ``_OTelSDKConfigurator`` / ``_initialize_components`` (``opentelemetry.sdk._configuration``): the standard SDK
  setup the zero-code configurator reuses (``distro.py``).
- ``ReadableSpan._attributes`` and ``BoundedAttributes._dict``: the plain dict under an ended span's attributes, read
  without the copy or the per-key method calls of the public mapping (``event.py``'s mapping, once per exported span).
- ``ReadableSpan``'s instance fields (``_name``, ``_context``, ``_attributes``, ``_events``, ``_status``, ...):
  :func:`copied_readable_span` copies a plain ``ReadableSpan`` field by field instead of through its constructor and
  a dozen properties (``exporters/wrapping.copy_span``, once per rendered span); the fields are those a probe span
  has, so a renamed field takes the constructor path.
- ``Tracer._span_limits`` / ``_tracer_metrics`` / ``_is_enabled`` / ``_instrumentation_scope``, the attribute value
  cleaner ``opentelemetry.attributes._clean_attribute_value`` (``_clean_attribute`` before SDK 1.38) and
  ``SynchronousMultiSpanProcessor._span_processors``: the deferred and direct span paths
  (``instrumentation/deferred.py``, ``direct.py``), which take the SDK path whenever one of these is missing.
- ``_get_from_env_or_default`` (``opentelemetry.sdk.trace.sampling``): the ``OTEL_TRACES_SAMPLER`` sampler.
- ``BatchSpanProcessor._batch_processor`` (the shared ``BatchProcessor``, SDK 1.34+) and its ``_queue``,
  ``_worker_thread`` and ``_metrics`` (processor metrics with ``drop_items``, SDK 1.41+): drop counting and the
  bounded shutdown in ``exporters/batching.py``. Each accessor returns None where the SDK lacks the attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.sampling import Sampler


def sdk_configurator() -> type:
    """The SDK's own configurator class (imported on first use: it loads the SDK's entry-point machinery)."""
    from opentelemetry.sdk._configuration import _OTelSDKConfigurator

    configurator: type = _OTelSDKConfigurator
    return configurator


def initialize_components(**kwargs: Any) -> None:
    """The SDK's own setup from ``OTEL_*`` (resource, exporters, metrics, logs), with the given overrides."""
    from opentelemetry.sdk._configuration import _initialize_components

    _initialize_components(**kwargs)


def sampler_from_env() -> Sampler:
    """The head sampler ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` ask for (SDK default otherwise)."""
    from opentelemetry.sdk.trace.sampling import _get_from_env_or_default

    sampler: Sampler = _get_from_env_or_default()
    return sampler


def batch_processor(span_processor: Any) -> Any:
    """The SDK's shared ``BatchProcessor`` behind a ``BatchSpanProcessor``, or None."""
    return getattr(span_processor, "_batch_processor", None)


def batch_queue(span_processor: Any) -> Any:
    """The batch processor's bounded deque of pending spans, or None."""
    return getattr(batch_processor(span_processor), "_queue", None)


def batch_worker_thread(span_processor: Any) -> Any:
    """The batch processor's export thread, or None."""
    return getattr(batch_processor(span_processor), "_worker_thread", None)


def batch_metrics(span_processor: Any) -> Any:
    """The batch processor's metrics object (``drop_items``), or None."""
    return getattr(batch_processor(span_processor), "_metrics", None)


def set_batch_metrics(span_processor: Any, metrics: Any) -> None:
    """Replace the batch processor's metrics object (to count what it drops)."""
    batch_processor(span_processor)._metrics = metrics


def span_attributes(span: ReadableSpan) -> Mapping[str, Any]:
    """An ended span's attributes for reading, as cheaply as possible: the dict under its ``BoundedAttributes`` (or
    the mapping it was built with), else the public read-only view. Callers must not modify it."""
    attributes = getattr(span, "_attributes", None)
    if attributes is None:
        return span.attributes or {}
    inner = getattr(attributes, "_dict", None)
    if type(inner) is dict:
        return inner
    if type(attributes) is dict:
        return attributes
    return span.attributes or {}


def _readable_fields() -> frozenset[str]:
    from opentelemetry.sdk.resources import Resource

    probe = ReadableSpan("probe", resource=Resource.get_empty())
    return frozenset(getattr(probe, "__dict__", ()))


_READABLE_FIELDS = _readable_fields()


def copied_readable_span(span: ReadableSpan, changes: Mapping[str, Any]) -> ReadableSpan | None:
    """A copy of the plain ``ReadableSpan`` ``span`` with its fields in ``changes`` (``{"_attributes": ...}``)
    replaced; attributes set on ``span`` beyond the SDK's own do not travel. None when ``span`` is another type (an
    SDK ``_Span``) or a field is unknown: the caller then builds the copy through the constructor."""
    if type(span) is not ReadableSpan or not _READABLE_FIELDS or not _READABLE_FIELDS.issuperset(changes):
        return None
    fields = span.__dict__.copy()
    if len(fields) != len(_READABLE_FIELDS):
        for name in fields.keys() - _READABLE_FIELDS:
            del fields[name]
        if len(fields) != len(_READABLE_FIELDS):
            return None
    fields.update(changes)
    copy: ReadableSpan = object.__new__(ReadableSpan)
    copy.__dict__ = fields
    return copy


def attribute_value_cleaner() -> Callable[[Any], Any] | None:
    """The SDK's attribute value cleaner (what ``BoundedAttributes`` stores for a value), or None if not found."""
    from opentelemetry import attributes as otel_attributes

    current = getattr(otel_attributes, "_clean_attribute_value", None)  # SDK 1.38+
    if current is not None:
        return lambda value: current(value, None)
    older = getattr(otel_attributes, "_clean_attribute", None)
    if older is not None:
        return lambda value: older("leanllm", value, None)
    return None


def tracer_span_limits(tracer: Any) -> Any:
    """The tracer's ``SpanLimits``, or None."""
    return getattr(tracer, "_span_limits", None)


def tracer_self_metrics(tracer: Any) -> Any:
    """The tracer's own span metrics object (a no-op one unless the SDK's self-metrics are on), or None."""
    return getattr(tracer, "_tracer_metrics", None)


def tracer_enabled(tracer: Any) -> bool:
    """Whether the tracer records (False once its provider is shut down or it is disabled); True if unknown."""
    enabled = getattr(tracer, "_is_enabled", None)
    return bool(enabled()) if callable(enabled) else True


def tracer_scope(tracer: Any) -> Any:
    """The tracer's ``InstrumentationScope``, or None."""
    return getattr(tracer, "_instrumentation_scope", None)


def multi_processor_members(multi: Any) -> Any:
    """The span processors a provider's ``SynchronousMultiSpanProcessor`` holds (a tuple, replaced on every add), or
    None."""
    return getattr(multi, "_span_processors", None)
