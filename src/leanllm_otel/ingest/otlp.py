"""OTLP/HTTP trace payloads -> ``LLMEvent``: decoding (protobuf and JSON), span conversion, answers.

Decoded spans go through :func:`leanllm_otel.event.event_from_attributes`, the same mapping the SDK-side
exporters use, so an event is identical whichever path it took. Only LLM spans (those carrying
``leanllm.request_id``) become events; other spans are accepted and ignored.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from leanllm_otel.event import LLMEvent, event_from_attributes, is_llm_span_attributes

__all__ = [
    "CONTENT_TYPE_JSON",
    "CONTENT_TYPE_PROTOBUF",
    "OTLPPayloadError",
    "TraceConversion",
    "decode_request",
    "encode_response",
    "encode_status",
    "events_from_request",
    "otlp_span_to_event",
]

CONTENT_TYPE_PROTOBUF = "application/x-protobuf"
CONTENT_TYPE_JSON = "application/json"

_MAX_ERRORS = 5  # error messages kept per request (the count is exact, the text is a sample)
_ID_FIELDS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")


class OTLPPayloadError(ValueError):
    """The body is not a valid OTLP ExportTraceServiceRequest in the declared encoding."""


@dataclass
class TraceConversion:
    """The events found in one OTLP request, and the LLM spans that could not be turned into events."""

    events: list[LLMEvent] = field(default_factory=list)
    spans_seen: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(message)


# --- decoding ----------------------------------------------------------------------------------------------


def decode_request(body: bytes, *, json_encoded: bool) -> ExportTraceServiceRequest:
    """Parse an OTLP/HTTP trace request body (binary protobuf or OTLP JSON). Raises :class:`OTLPPayloadError`."""
    request = ExportTraceServiceRequest()
    if not json_encoded:
        try:
            request.ParseFromString(body)
        except (DecodeError, ValueError, RuntimeError) as exc:
            raise OTLPPayloadError(f"invalid OTLP protobuf: {exc}") from None
        return request
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise OTLPPayloadError(f"invalid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise OTLPPayloadError("OTLP JSON must be an object with resourceSpans")
    _hex_ids_to_base64(document)
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise OTLPPayloadError(f"invalid OTLP JSON: {exc}") from None
    return request


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """OTLP JSON spells trace/span ids in hex; protobuf's JSON mapping expects base64 for bytes fields."""
    for span in _json_spans(document):
        _convert_ids(span)
        links = span.get("links")
        if isinstance(links, list):
            for link in links:
                if isinstance(link, dict):
                    _convert_ids(link)


def _json_spans(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for resource_spans in _list(document, "resourceSpans", "resource_spans"):
        for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans"):
            yield from _list(scope_spans, "spans")


def _list(container: Any, *keys: str) -> Iterator[dict[str, Any]]:
    if not isinstance(container, dict):
        return
    for key in keys:
        items = container.get(key)
        if isinstance(items, list):
            yield from (item for item in items if isinstance(item, dict))


def _convert_ids(obj: dict[str, Any]) -> None:
    for key in _ID_FIELDS:
        value = obj.get(key)
        if isinstance(value, str) and value and len(value) in (16, 32):
            # Not hex: leave it for the protobuf parser (base64) to accept or reject.
            with contextlib.suppress(ValueError):
                obj[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")


# --- conversion --------------------------------------------------------------------------------------------


def attribute_value(value: AnyValue) -> Any:
    """An OTLP ``AnyValue`` as the Python value the SDK would hold (arrays -> lists, kvlists -> dicts)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [attribute_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: attribute_value(item.value) for item in value.kvlist_value.values}
    if kind == "bytes_value":
        return binascii.hexlify(value.bytes_value).decode("ascii")
    return getattr(value, kind)


def attributes_dict(attributes: Any) -> dict[str, Any]:
    """``repeated KeyValue`` -> ``{key: value}`` (a later duplicate key wins, as in the SDK)."""
    result: dict[str, Any] = {}
    item: KeyValue
    for item in attributes:
        result[item.key] = attribute_value(item.value)
    return result


def _hex_id(raw: bytes) -> str | None:
    if not raw or not any(raw):
        return None
    return raw.hex()


def otlp_span_to_event(span: Span) -> LLMEvent | None:
    """The event for one decoded span, or None when it is not an LLM span. Raises on invalid field values."""
    attributes = attributes_dict(span.attributes)
    if not is_llm_span_attributes(attributes):
        return None
    return event_from_attributes(
        attributes,
        start_time_ns=span.start_time_unix_nano or None,
        end_time_ns=span.end_time_unix_nano or None,
        trace_id=_hex_id(span.trace_id),
        span_id=_hex_id(span.span_id),
        parent_span_id=_hex_id(span.parent_span_id),
        is_error=span.status.code == Status.STATUS_CODE_ERROR,
        status_description=span.status.message or None,
    )


def events_from_request(request: ExportTraceServiceRequest) -> TraceConversion:
    """Every LLM span of ``request`` as an event; spans that fail conversion are counted as rejected."""
    conversion = TraceConversion()
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                conversion.spans_seen += 1
                try:
                    event = otlp_span_to_event(span)
                except Exception as exc:  # a value of the wrong type, an empty id, ...
                    conversion.reject(f"span {span.span_id.hex() or '?'}: {_short(exc)}")
                    continue
                if event is not None:
                    conversion.events.append(event)
    return conversion


def _short(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic ValidationError: field and message, never the (possibly sensitive) input
        try:
            parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors(include_input=False)]
            return "; ".join(parts)[:300]
        except Exception:
            pass
    return f"{type(exc).__name__}: {exc}"[:300]


# --- answers -----------------------------------------------------------------------------------------------


def encode_response(*, rejected: int, message: str, json_encoded: bool) -> bytes:
    """An ``ExportTraceServiceResponse``; ``partial_success`` is set only when spans were rejected."""
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if json_encoded:
        return str(json_format.MessageToJson(response, indent=None)).encode("utf-8")
    return bytes(response.SerializeToString())


def encode_status(*, code: int, message: str, json_encoded: bool) -> bytes:
    """A ``google.rpc.Status`` body, which OTLP/HTTP mandates for 4xx and 5xx answers."""
    from google.rpc.status_pb2 import Status as RpcStatus

    status = RpcStatus(code=code, message=message)
    if json_encoded:
        return str(json_format.MessageToJson(status, indent=None)).encode("utf-8")
    return bytes(status.SerializeToString())
