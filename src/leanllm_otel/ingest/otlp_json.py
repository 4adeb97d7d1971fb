"""OTLP JSON trace requests, decoded span by span.

A span with a malformed value is rejected alone (the others of the request are kept), with a reason that names
its field and never quotes its value: protobuf's own parser messages quote it, and a value may be a prompt. OTLP
JSON can also spell a lone surrogate (``"\\ud800"``) that no protobuf string can hold: it becomes U+FFFD and the
span is kept, its repair counted.
"""

from __future__ import annotations

import base64
import contextlib
from dataclasses import dataclass, field
from typing import Any

import re2
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from leanllm_otel.ingest.events import load_json
from leanllm_otel.repair import repair

__all__ = ["DecodedTraces", "OTLPPayloadError", "decode_json"]

_ID_FIELDS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")
_RESOURCE_KEYS = ("resourceSpans", "resource_spans")
_SCOPE_KEYS = ("scopeSpans", "scope_spans")
# A JSON escape of a (possibly lone) surrogate: only then can a decoded string hold one.
_SURROGATE_ESCAPE = re2.compile(rb"\\u[dD][89abcdefABCDEF]")
# protobuf's ParseDict errors read "Failed to parse <field> field: ... <the value> ..."; only field names are kept.
_FAILED_FIELD = re2.compile(r"Failed to parse ([A-Za-z_][A-Za-z0-9_]{0,63}) field")
_PARSE_ERRORS = (json_format.ParseError, ValueError, TypeError, RecursionError)


class OTLPPayloadError(ValueError):
    """The body is not a valid OTLP ExportTraceServiceRequest in the declared encoding (the message quotes no
    value)."""


@dataclass
class DecodedTraces:
    """A decoded request, and per span (index in document order) what was repaired or could not be decoded."""

    request: ExportTraceServiceRequest
    repairs: dict[int, int] = field(default_factory=dict)  # strings repaired
    problems: dict[int, str] = field(default_factory=dict)  # why the span could not be decoded (an empty span)


def decode_json(body: bytes) -> DecodedTraces:
    """Parse an OTLP JSON body. Raises :class:`OTLPPayloadError` when its frame (resources, scopes) is unusable."""
    document = load_json(body, OTLPPayloadError)
    if not isinstance(document, dict):
        raise OTLPPayloadError("OTLP JSON must be an object with resourceSpans")
    decoded = DecodedTraces(ExportTraceServiceRequest())
    repairing = _SURROGATE_ESCAPE.search(body) is not None
    index = 0
    for r, resource_spans in enumerate(_items(document, _RESOURCE_KEYS, "resourceSpans")):
        resource_message = decoded.request.resource_spans.add()
        _parse(_without(resource_spans, _SCOPE_KEYS), resource_message, f"resourceSpans[{r}]", repairing)
        for s, scope_spans in enumerate(_items(resource_spans, _SCOPE_KEYS, f"resourceSpans[{r}].scopeSpans")):
            scope_message = resource_message.scope_spans.add()
            _parse(_without(scope_spans, ("spans",)), scope_message, f"resourceSpans[{r}].scopeSpans[{s}]", repairing)
            spans = scope_spans.get("spans")
            for span in spans if isinstance(spans, list) else ():
                target = scope_message.spans.add()
                problem = _decode_span(span, target, decoded, index, repairing)
                if problem is not None:
                    target.Clear()
                    decoded.problems[index] = problem
                index += 1
    return decoded


def _decode_span(span: Any, target: Any, decoded: DecodedTraces, index: int, repairing: bool) -> str | None:
    if not isinstance(span, dict):
        return "not a JSON object"
    if repairing:
        span, count = repair(span)
        if count:
            decoded.repairs[index] = count
    _convert_ids(span)
    links = span.get("links")
    if isinstance(links, list):
        for link in links:
            if isinstance(link, dict):
                _convert_ids(link)
    try:
        json_format.ParseDict(span, target, ignore_unknown_fields=True)
    except _PARSE_ERRORS as exc:
        return _reason(exc)
    return None


def _items(container: dict[str, Any], keys: tuple[str, ...], where: str) -> list[dict[str, Any]]:
    for key in keys:
        if key in container:
            items = container[key]
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
                raise OTLPPayloadError(f"invalid OTLP JSON: {where} must be an array of objects")
            return items
    return []


def _without(container: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key, value in container.items() if key not in keys}


def _parse(value: dict[str, Any], message: Any, where: str, repairing: bool) -> None:
    if repairing:
        value = repair(value)[0]
    try:
        json_format.ParseDict(value, message, ignore_unknown_fields=True)
    except _PARSE_ERRORS as exc:
        raise OTLPPayloadError(f"{_reason(exc)} of {where}") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "invalid OTLP JSON: nested too deeply"
    fields = [match.group(1) for match in _FAILED_FIELD.finditer(str(exc)[:4096])][:16]
    return f"invalid OTLP JSON in field {'.'.join(fields)}" if fields else "invalid OTLP JSON"


def _convert_ids(obj: dict[str, Any]) -> None:
    """OTLP JSON spells trace/span ids in hex; protobuf's JSON mapping expects base64 for bytes fields."""
    for key in _ID_FIELDS:
        value = obj.get(key)
        if isinstance(value, str) and value and len(value) in (16, 32):
            # Not hex: leave it for the protobuf parser (base64) to accept or reject.
            with contextlib.suppress(ValueError):
                obj[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
