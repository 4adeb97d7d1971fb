"""Export-thread rendering: a kept span's ``CallRecord`` becomes final, redacted attributes.

``ContentRenderingExporter`` wraps a real exporter inside its ``BatchSpanProcessor``; its ``export`` runs on the
batch worker thread, so serialising content, scanning it and hashing it never cost the caller anything, and the
real exporter only ever receives plain ``ReadableSpan`` objects whose content is already in its final form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

from leanllm_otel import otel_compat
from leanllm_otel import semconv as sc
from leanllm_otel._internal import log_internal_error
from leanllm_otel.cost import usage_cost
from leanllm_otel.exporters.wrapping import WrappingExporter, copy_span
from leanllm_otel.processing.record import CallRecord
from leanllm_otel.repair import FINDING_REPAIRED_VALUE, repair, repair_text, with_repair_finding
from leanllm_otel.settings import TelemetrySettings


class Renderer:
    """Turns (span, record) into the exported span. Stateless apart from settings and the lazily built detector."""

    def __init__(self, settings: TelemetrySettings, hash_key: bytes | None = None) -> None:
        self.settings = settings
        self.hash_key = hash_key
        self._content: Any = None

    def _content_renderer(self) -> Any:
        if self._content is None:
            from leanllm_otel.processing.content import ContentRenderer

            self._content = ContentRenderer(self.settings, hash_key=self.hash_key)
        return self._content

    def render(self, span: ReadableSpan) -> ReadableSpan:
        record: CallRecord | None = getattr(span, "leanllm_record", None)
        original = otel_compat.span_attributes(span)  # dict() of the public view costs a call per key
        if record is None and (sc.LEANLLM_COST_USD in original or sc.GEN_AI_USAGE_INPUT_TOKENS not in original):
            return span  # nothing to add: no copy
        attributes = dict(original)
        events: Sequence[Event] = span.events
        try:
            if record is not None:
                extra = self._content_renderer().render(record)
                attributes.update(extra)
                message = extra.get(sc.LEANLLM_ERROR_MESSAGE)
                if isinstance(message, str):
                    events = _with_exception_message(events, message)
            _enrich_cost(attributes)
        except Exception:
            log_internal_error("rendering span content")
            # Fail closed: the span leaves with no content at all rather than unredacted content.
            attributes = dict(original)
        return copy_span(span, attributes=attributes, events=events)


# Written by the content renderer, which only ever produces encodable text (``capping.dumps``, ``sanitize``).
_RENDERED_CLEAN = frozenset({
    sc.GEN_AI_SYSTEM_INSTRUCTIONS, sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_TOOL_DEFINITIONS,
    sc.LEANLLM_TOOL_CALLS, sc.LEANLLM_ERROR_MESSAGE,
})  # fmt: skip


def _encodable(text: str) -> bool:
    return text.isascii() or repair_text(text) is None


def _clean(attributes: Mapping[str, Any]) -> bool:
    for key, value in attributes.items():
        kind = type(value)
        if kind is str:
            if not value.isascii() and key not in _RENDERED_CLEAN and not _encodable(value):
                return False
        elif (kind is tuple or kind is list) and not all(type(item) is not str or _encodable(item) for item in value):
            return False
        if not key.isascii() and not _encodable(key):
            return False
    return True


def repaired_span(span: ReadableSpan) -> ReadableSpan:
    """``span``, or a copy whose strings no export format could carry (lone surrogates) are repaired; an LLM span
    then counts the repaired values under ``REPAIRED_VALUE`` in its findings. Nothing is dropped for a character."""
    description = span.status.description
    if (
        _clean(span.attributes or {})
        and _encodable(span.name)
        and (description is None or _encodable(description))
        and all(_clean(event.attributes or {}) for event in span.events)
    ):
        return span
    name, name_count = repair(span.name)
    attributes, count = repair(dict(span.attributes or {}))
    events = list(span.events)
    for index, event in enumerate(events):
        event_attributes, event_count = repair(dict(event.attributes or {}))
        if event_count:
            events[index] = Event(event.name, event_attributes, event.timestamp)
            count += event_count
    description, description_count = repair(description)
    if not (count or name_count or description_count):
        return span
    if sc.LEANLLM_REQUEST_ID in attributes:
        total = count + name_count + description_count
        attributes[sc.LEANLLM_SECURITY_FINDINGS] = with_repair_finding(
            attributes.get(sc.LEANLLM_SECURITY_FINDINGS, "{}"), total
        )
        types = set(attributes.get(sc.LEANLLM_SECURITY_FINDING_TYPES) or ())
        attributes[sc.LEANLLM_SECURITY_FINDING_TYPES] = sorted({*types, FINDING_REPAIRED_VALUE})
    status = Status(span.status.status_code, description) if description_count else None
    return copy_span(span, attributes=attributes, events=events, name=name, status=status)


def _with_exception_message(events: Sequence[Event], message: str) -> list[Event]:
    rewritten: list[Event] = []
    for event in events:
        if event.name == sc.EXCEPTION_EVENT:
            attrs: dict[str, Any] = dict(event.attributes or {})
            attrs[sc.EXCEPTION_MESSAGE] = message
            event = Event(event.name, attrs, event.timestamp)
        rewritten.append(event)
    return rewritten


def _enrich_cost(attributes: dict[str, Any]) -> None:
    """Cost from LiteLLM's own price map when the call path did not carry it (streams, stale references)."""
    if sc.LEANLLM_COST_USD in attributes:
        return
    cost = usage_cost(attributes)
    if cost is not None:
        attributes[sc.LEANLLM_COST_USD] = cost


class ContentRenderingExporter(WrappingExporter):
    """Renders each span, then hands the batch to the wrapped exporter."""

    def __init__(self, exporter: SpanExporter, renderer: Renderer) -> None:
        super().__init__(exporter)
        self.renderer = renderer
        # The store and service exporters repair what their formats cannot carry themselves, only when a write
        # fails (``repairs_values``); any other exporter (OTLP, the application's own) gets spans every format can
        # carry, checked here (a few microseconds a span, next to its protobuf encoding).
        self._repair = not self.repairs_values

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        rendered = [self.renderer.render(span) for span in spans]
        if self._repair:
            rendered = [repaired_span(span) for span in rendered]
        return self.inner.export(rendered)
