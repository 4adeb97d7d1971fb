"""OTLP/HTTP trace payloads -> ``LLMEvent``: decoding (protobuf and JSON), span conversion, answers.

Decoded spans go through :func:`leanllm_otel.event.event_from_attributes`, the same mapping the SDK-side
exporters use, so an event is identical whichever path it took. Only LLM spans (those carrying
``leanllm.request_id``) become events; other spans are accepted and ignored.
"""

from __future__ import annotations

import binascii
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
from pydantic import ValidationError

from leanllm_otel.event import LLMEvent, MappingError, event_from_attributes, is_llm_span_attributes
from leanllm_otel.ingest.events import validation_reason
from leanllm_otel.ingest.otlp_json import DecodedTraces, OTLPPayloadError, decode_json
from leanllm_otel.repair import with_repair_finding

__all__ = [
    "CONTENT_TYPE_JSON",
    "CONTENT_TYPE_PROTOBUF",
    "DecodedTraces",
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

_MAX_ERRORS = 100  # error messages kept per request (the count is exact, beyond this the text is a sample)


@dataclass
class TraceConversion:
    """The events found in one OTLP request, and the LLM spans that could not be turned into events."""

    events: list[LLMEvent] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # the span index (document order) of each event
    spans_seen: int = 0
    rejected: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(message)


# --- decoding ----------------------------------------------------------------------------------------------


def decode_request(body: bytes, *, json_encoded: bool) -> DecodedTraces:
    """Parse an OTLP/HTTP trace request body (binary protobuf or OTLP JSON). Raises :class:`OTLPPayloadError`,
    whose message names the field at fault and never quotes a value. OTLP JSON is decoded span by span
    (:mod:`leanllm_otel.ingest.otlp_json`): a malformed span is reported alone."""
    if json_encoded:
        return decode_json(body)
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError):
        raise OTLPPayloadError("invalid OTLP protobuf (not an ExportTraceServiceRequest)") from None
    return DecodedTraces(request)


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


def events_from_request(decoded: DecodedTraces) -> TraceConversion:
    """Every LLM span of the request as an event; spans that fail decoding or conversion are counted as rejected.

    Spans whose strings were repaired get ``REPAIRED_VALUE`` in their findings. An event id seen twice keeps its
    first span (the store's rule: the first write of an id wins).
    """
    conversion = TraceConversion()
    seen: set[str] = set()
    for resource_spans in decoded.request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                index = conversion.spans_seen
                conversion.spans_seen += 1
                problem = decoded.problems.get(index)
                if problem is not None:
                    conversion.reject(f"spans[{index}]: {problem}")
                    continue
                try:
                    event = otlp_span_to_event(span)
                except Exception as exc:  # a value of the wrong type, an empty id, ...
                    conversion.reject(f"spans[{index}]: {_short(exc)}")
                    continue
                if event is None:
                    continue
                if event.event_id in seen:
                    conversion.duplicates += 1
                    continue
                seen.add(event.event_id)
                repaired = decoded.repairs.get(index, 0)
                if repaired:
                    event.findings = with_repair_finding(event.findings, repaired)
                conversion.events.append(event)
                conversion.positions.append(index)
    return conversion


def _short(exc: Exception) -> str:
    """What was wrong with a span: the fields and messages, never the (possibly sensitive) values."""
    if isinstance(exc, ValidationError):
        return validation_reason(exc)
    if isinstance(exc, MappingError):
        return str(exc)[:300]
    return f"cannot convert the span ({type(exc).__name__})"


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
