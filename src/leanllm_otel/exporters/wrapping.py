"""``WrappingExporter``: the one way an exporter wraps another (rendering, guard, overlap, the entry point).

A wrapper forwards ``export``, ``force_flush(timeout_millis)`` and ``shutdown(timeout_millis)`` to the exporter it
wraps, and exposes the wrapped exporter's capabilities explicitly, so whoever builds the export chain can ask the
outermost wrapper what the real exporter can do:

- ``supports_concurrent_export``: ``export`` may run on several threads at once (the batch processor overlaps);
- ``delivery``: the retrying ``Delivery`` whose ``close()`` interrupts backoff at shutdown;
- ``drops``: the exporter's own ``DropCounter``;
- ``repairs_values``: the exporter repairs what its format cannot carry itself.

From leanllm_otel it imports only ``otel_compat``. :func:`copy_span` is the one way a span is copied with changes.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext, Status

from leanllm_otel.otel_compat import copied_readable_span

__all__ = ["WrappingExporter", "copy_span", "shutdown_exporter"]


def shutdown_exporter(exporter: SpanExporter, timeout_millis: float | None = None) -> None:
    """``exporter.shutdown()``, passing ``timeout_millis`` when given and the exporter's ``shutdown`` accepts it."""
    if timeout_millis is not None and "timeout_millis" in inspect.signature(exporter.shutdown).parameters:
        exporter.shutdown(timeout_millis=timeout_millis)  # type: ignore[call-arg]
    else:
        exporter.shutdown()


class WrappingExporter(SpanExporter):
    """Forwards everything to ``inner``; subclasses override ``export`` (and the lifecycle, when they buffer)."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export(spans)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis) is not False  # the SDK's base class returns None

    def shutdown(self, timeout_millis: float | None = None) -> None:
        shutdown_exporter(self.inner, timeout_millis)

    # --- capabilities of the wrapped exporter ------------------------------------------------------------------
    @property
    def supports_concurrent_export(self) -> bool:
        return getattr(self.inner, "supports_concurrent_export", False) is True

    @property
    def delivery(self) -> Any:
        return getattr(self.inner, "delivery", None)

    @property
    def drops(self) -> Any:
        return getattr(self.inner, "drops", None)

    @property
    def repairs_values(self) -> bool:
        return getattr(self.inner, "repairs_values", False) is True


def copy_span(
    span: ReadableSpan,
    *,
    context: SpanContext | None = None,
    attributes: Mapping[str, Any] | None = None,
    events: Sequence[Event] | None = None,
    name: str | None = None,
    status: Status | None = None,
) -> ReadableSpan:
    """A plain ``ReadableSpan`` equal to ``span`` except for what is given."""
    changes: dict[str, Any] = {} if attributes is None else {"_attributes": attributes}
    if events is not None:
        changes["_events"] = events
    if context is not None:
        changes["_context"] = context
    if name is not None:
        changes["_name"] = name
    if status is not None:
        changes["_status"] = status
    copy = copied_readable_span(span, changes)
    if copy is not None:
        return copy
    return ReadableSpan(
        name=name if name is not None else span.name,
        context=context if context is not None else span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes if attributes is not None else span.attributes,
        events=events if events is not None else span.events,
        links=span.links,
        kind=span.kind,
        status=status if status is not None else span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
