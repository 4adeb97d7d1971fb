"""``LLMEvent`` (defined in :mod:`leanllm_otel.event_model`) and the one mapping between it and span attributes.

Every other representation (the SQL row, the LeanLLM service payload, the CLI's JSON lines, ``last_event``) is
derived from ``LLMEvent``, and ``LLMEvent`` is derived from a span only here. A field is named in ``_SCALARS``
(or handled by one of the prefix/JSON rules below it) and nowhere else.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from leanllm_otel import otel_compat
from leanllm_otel import semconv as sc
from leanllm_otel.event_model import EVENT_ID_MAX_CHARS, EventStatus, LLMEvent

__all__ = [
    "EVENT_ID_MAX_CHARS",
    "EventStatus",
    "LLMEvent",
    "MappingError",
    "event_from_attributes",
    "findings_text",
    "is_llm_span_attributes",
    "row_defaults",
    "span_row_values",
    "span_to_event",
]


class MappingError(ValueError):
    """A span's attributes cannot make an event. The message names the attribute, never its value."""


@dataclass(frozen=True, slots=True)
class _Scalar:
    field: str
    attribute: str
    kind: type


# The scalar fields: event field <- span attribute. Everything not listed here is handled by a named rule below.
_SCALARS: tuple[_Scalar, ...] = (
    _Scalar("operation", sc.GEN_AI_OPERATION_NAME, str),
    _Scalar("provider", sc.GEN_AI_PROVIDER_NAME, str),
    _Scalar("model", sc.GEN_AI_REQUEST_MODEL, str),
    _Scalar("response_model", sc.GEN_AI_RESPONSE_MODEL, str),
    _Scalar("response_id", sc.GEN_AI_RESPONSE_ID, str),
    _Scalar("server_address", sc.SERVER_ADDRESS, str),
    _Scalar("server_port", sc.SERVER_PORT, int),
    _Scalar("input_tokens", sc.GEN_AI_USAGE_INPUT_TOKENS, int),
    _Scalar("output_tokens", sc.GEN_AI_USAGE_OUTPUT_TOKENS, int),
    _Scalar("total_tokens", sc.LEANLLM_TOTAL_TOKENS, int),
    _Scalar("cache_read_input_tokens", sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, int),
    _Scalar("cache_creation_input_tokens", sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, int),
    _Scalar("reasoning_tokens", sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, int),
    _Scalar("usage_reported", sc.LEANLLM_USAGE_REPORTED, bool),
    _Scalar("cost", sc.LEANLLM_COST_USD, float),
    _Scalar("latency_ms", sc.LEANLLM_LATENCY_MS, float),
    _Scalar("stream", sc.LEANLLM_STREAM, bool),
    _Scalar("stream_outcome", sc.LEANLLM_STREAM_OUTCOME, str),
    _Scalar("stream_chunks", sc.LEANLLM_STREAM_CHUNKS, int),
    _Scalar("time_to_first_token_ms", sc.LEANLLM_TTFT_MS, float),
    _Scalar("total_stream_time_ms", sc.LEANLLM_STREAM_TIME_MS, float),
    _Scalar("environment", sc.LEANLLM_ENVIRONMENT, str),
    _Scalar("correlation_id", sc.LEANLLM_CORRELATION_ID, str),
    _Scalar("parent_request_id", sc.LEANLLM_PARENT_REQUEST_ID, str),
    _Scalar("error_type", sc.ERROR_TYPE, str),
    _Scalar("error_kind", sc.LEANLLM_ERROR_KIND, str),
    _Scalar("error_message", sc.LEANLLM_ERROR_MESSAGE, str),
    _Scalar("redaction_mode", sc.LEANLLM_REDACTION_MODE, str),
    _Scalar("sampling_rate", sc.LEANLLM_SAMPLING_RATE, float),
    _Scalar("content_captured", sc.LEANLLM_CONTENT_CAPTURED, bool),
    _Scalar("input_message_count", sc.LEANLLM_INPUT_MESSAGE_COUNT, int),
    _Scalar("output_message_count", sc.LEANLLM_OUTPUT_MESSAGE_COUNT, int),
    _Scalar("content_truncated", sc.LEANLLM_CONTENT_TRUNCATED, bool),
    _Scalar("input_chars", sc.LEANLLM_INPUT_CHARS, int),
    _Scalar("output_chars", sc.LEANLLM_OUTPUT_CHARS, int),
    _Scalar("max_severity", sc.LEANLLM_SECURITY_MAX_SEVERITY, str),
    _Scalar("blocked", sc.LEANLLM_SECURITY_BLOCKED, bool),
    _Scalar("block_reason", sc.LEANLLM_SECURITY_BLOCK_REASON, str),
)

# JSON-encoded string attributes -> structured event fields.
_JSON_FIELDS: tuple[tuple[str, str], ...] = (
    ("input_messages", sc.GEN_AI_INPUT_MESSAGES),
    ("output_messages", sc.GEN_AI_OUTPUT_MESSAGES),
    ("system_instructions", sc.GEN_AI_SYSTEM_INSTRUCTIONS),
    ("tool_definitions", sc.GEN_AI_TOOL_DEFINITIONS),
    ("tool_calls", sc.LEANLLM_TOOL_CALLS),
    ("findings", sc.LEANLLM_SECURITY_FINDINGS),
    ("normalized_input", sc.LEANLLM_NORMALIZED_INPUT),
    ("normalized_output", sc.LEANLLM_NORMALIZED_OUTPUT),
)

# Request parameters (as the caller passed them to LiteLLM) -> ``LLMEvent.parameters`` (what replay re-sends).
_PARAMETERS: tuple[tuple[str, str], ...] = (
    ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", sc.GEN_AI_REQUEST_TOP_P),
    ("top_k", sc.GEN_AI_REQUEST_TOP_K),
    ("max_tokens", sc.GEN_AI_REQUEST_MAX_TOKENS),
    ("seed", sc.GEN_AI_REQUEST_SEED),
    ("frequency_penalty", sc.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", sc.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("n", sc.GEN_AI_REQUEST_CHOICE_COUNT),
    ("stop", sc.GEN_AI_REQUEST_STOP_SEQUENCES),
)

# Context fields mirrored into ``LLMEvent.metadata`` (LeanLLM puts environment there too).
_METADATA_SCALARS: tuple[tuple[str, str], ...] = (
    ("environment", sc.LEANLLM_ENVIRONMENT),
    ("user_id", sc.LEANLLM_USER_ID),
    ("session_id", sc.LEANLLM_SESSION_ID),
    ("feature", sc.LEANLLM_FEATURE),
)


def is_llm_span_attributes(attributes: Mapping[str, Any] | None) -> bool:
    """True when the attributes are those of a leanllm LLM span (it carries an event id)."""
    return bool(attributes) and sc.LEANLLM_REQUEST_ID in attributes  # type: ignore[operator]


def _coerce(value: Any, kind: type) -> Any:
    if value is None:
        return None
    try:
        if kind is bool:
            if isinstance(value, str):
                return value.strip().lower() in ("true", "1", "yes", "on")
            return bool(value)
        return kind(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(float("inf"))
        return None


# ``json.dumps(counts, sort_keys=True)``'s text, without building an encoder per call (its keyword arguments do).
_FINDINGS_ENCODER = json.JSONEncoder(sort_keys=True).encode


def findings_text(counts: Mapping[str, int]) -> str:
    """The value of ``leanllm.security.findings``: ``{"type": count}`` as JSON text, keys sorted (the one writer;
    the mapping below reads it back into ``LLMEvent.findings``)."""
    return _FINDINGS_ENCODER(counts)


_raw_decode = json.JSONDecoder().raw_decode


def _load_json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    # What the renderer writes has no surrounding whitespace: decoded without ``json.loads``'s two whitespace
    # regex matches; anything else (whitespace, trailing text, invalid) is ``json.loads``'s to accept or refuse.
    try:
        parsed, end = _raw_decode(value)
        if end == len(value):
            return parsed
    except ValueError:
        pass
    try:
        return json.loads(value)
    except ValueError:
        return {"_unparsed": value}


def _ns_to_datetime(ns: int | None) -> datetime | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)


def event_from_attributes(
    attributes: Mapping[str, Any],
    *,
    start_time_ns: int | None,
    end_time_ns: int | None = None,
    trace_id: str | None = None,
    span_id: str | None = None,
    parent_span_id: str | None = None,
    is_error: bool = False,
    status_description: str | None = None,
) -> LLMEvent:
    """Build the event from an LLM span's attributes (used for SDK spans and for decoded OTLP spans alike)."""
    return LLMEvent(
        **_event_values(
            attributes,
            start_time_ns=start_time_ns,
            end_time_ns=end_time_ns,
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent_span_id,
            is_error=is_error,
            status_description=status_description,
        )
    )


# One table for the single pass over a span's attributes: attribute -> (rule, event field or parameter, type).
_SCALAR, _JSON, _PARAMETER = 0, 1, 2
_RULES: dict[str, tuple[int, str, type | None]] = {
    **{scalar.attribute: (_SCALAR, scalar.field, scalar.kind) for scalar in _SCALARS},
    **{attribute: (_JSON, field, None) for field, attribute in _JSON_FIELDS},
    **{attribute: (_PARAMETER, name, None) for name, attribute in _PARAMETERS},
}
_LABEL_PREFIX_LENGTH = len(sc.LEANLLM_LABEL_PREFIX)
_TAG_PREFIX_LENGTH = len(sc.LEANLLM_TAG_PREFIX)


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the mapping does with one set of attribute keys, worked out once (a workload's spans share a few).

    The per-span work is then a C-level ``itemgetter`` over the scalar attributes and one type comparison, instead
    of a table lookup and a branch per attribute; the rules are ``_RULES``'s, applied in the same way.
    """

    scalar_getter: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    scalar_fields: tuple[str, ...]
    scalar_kinds: tuple[type, ...]
    others: tuple[tuple[str, int, str], ...]  # (attribute, _JSON or _PARAMETER, field or parameter name)
    labels: tuple[tuple[str, str], ...]  # (attribute, label name)
    tags: tuple[tuple[str, str], ...]
    metadata: tuple[tuple[str, str], ...]  # (metadata name, attribute), in _METADATA_SCALARS order


def _shape(keys: tuple[str, ...]) -> _Shape:
    scalars: list[tuple[str, str, type]] = []
    others: list[tuple[str, int, str]] = []
    labels: list[tuple[str, str]] = []
    tags: list[tuple[str, str]] = []
    for key in keys:
        rule = _RULES.get(key)
        if rule is None:
            if key.startswith(sc.LEANLLM_LABEL_PREFIX):
                labels.append((key, key[_LABEL_PREFIX_LENGTH:]))
            elif key.startswith(sc.LEANLLM_TAG_PREFIX):
                tags.append((key, key[_TAG_PREFIX_LENGTH:]))
        elif rule[0] == _SCALAR:
            scalars.append((key, rule[1], rule[2]))  # type: ignore[arg-type]
        else:
            others.append((key, rule[0], rule[1]))
    attributes = tuple(attribute for attribute, _, _ in scalars)
    getter: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    if len(attributes) == 1:
        only = attributes[0]
        getter = lambda mapping: (mapping[only],)  # noqa: E731 - itemgetter of one key returns no tuple
    elif attributes:
        getter = operator.itemgetter(*attributes)
    else:
        getter = lambda mapping: ()  # noqa: E731
    present = frozenset(keys)
    return _Shape(
        scalar_getter=getter,
        scalar_fields=tuple(field for _, field, _ in scalars),
        scalar_kinds=tuple(kind for _, _, kind in scalars),
        others=tuple(others),
        labels=tuple(labels),
        tags=tuple(tags),
        metadata=tuple((name, attribute) for name, attribute in _METADATA_SCALARS if attribute in present),
    )


_SHAPES: dict[tuple[str, ...], _Shape] = {}
_MAX_SHAPES = 256
_MAX_CACHED_KEYS = 128  # an instrumented call sets ~25-60; a span from an OTLP sender may carry thousands


def _shape_of(attributes: Mapping[str, Any]) -> _Shape:
    keys = tuple(attributes)
    shape = _SHAPES.get(keys)
    if shape is None:
        shape = _shape(keys)
        if len(keys) <= _MAX_CACHED_KEYS:
            if len(_SHAPES) >= _MAX_SHAPES:
                _SHAPES.clear()
            _SHAPES[keys] = shape
    return shape


def _event_values(
    attributes: Mapping[str, Any],
    *,
    start_time_ns: int | None,
    end_time_ns: int | None,
    trace_id: str | None,
    span_id: str | None,
    parent_span_id: str | None,
    is_error: bool,
    status_description: str | None,
) -> dict[str, Any]:
    """The mapping itself: ``LLMEvent`` field values from span attributes, already of the fields' types.

    Applies ``_RULES`` to the attributes the span has, through the span's :class:`_Shape` (this runs once per
    exported span on the export thread).
    """
    shape = _shape_of(attributes)
    raw_scalars = shape.scalar_getter(attributes)
    values: dict[str, Any]
    if tuple(map(type, raw_scalars)) == shape.scalar_kinds:  # the usual case: every scalar has its field's type
        values = dict(zip(shape.scalar_fields, raw_scalars, strict=True))
    else:
        values = {}
        for field, kind, raw in zip(shape.scalar_fields, shape.scalar_kinds, raw_scalars, strict=True):
            if type(raw) is kind:
                values[field] = raw
            else:
                coerced = _coerce(raw, kind)
                if coerced is not None:
                    values[field] = coerced
    parameters: dict[str, Any] = {}
    for key, rule_kind, field in shape.others:
        raw = attributes[key]
        if raw is None:
            continue
        if rule_kind == _JSON:
            values[field] = _load_json(raw)
        else:
            parameters[field] = raw if isinstance(raw, (str, int, float, bool)) else list(raw)
    labels = {name: str(attributes[key]) for key, name in shape.labels}

    findings = values.get("findings")
    if findings is not None:
        if not isinstance(findings, dict):
            values["findings"] = {}
        elif not all(isinstance(v, int) and not isinstance(v, bool) for v in findings.values()):
            values["findings"] = {
                str(k): v for k, v in findings.items() if isinstance(v, int) and not isinstance(v, bool)
            }
    values["parameters"] = parameters

    finish = attributes.get(sc.GEN_AI_RESPONSE_FINISH_REASONS)
    if finish is not None:
        if isinstance(finish, str):
            values["finish_reasons"] = [finish]
        elif isinstance(finish, (list, tuple)):
            values["finish_reasons"] = [str(v) for v in finish]
        else:  # a malformed span (e.g. from an OTLP sender): a ValueError its caller reports as a rejection
            got = type(finish).__name__
            raise MappingError(f"{sc.GEN_AI_RESPONSE_FINISH_REASONS} must be a string array, got {got}")

    metadata: dict[str, Any] = {}
    for name, attribute in shape.metadata:
        value = attributes[attribute]
        if value is not None:
            metadata[name] = str(value)
    if shape.tags:
        metadata["custom_tags"] = {name: str(attributes[key]) for key, name in shape.tags}

    error = is_error or sc.ERROR_TYPE in attributes
    if error and "error_message" not in values and status_description:
        values["error_message"] = status_description

    event_id = str(attributes[sc.LEANLLM_REQUEST_ID])
    if not 0 < len(event_id) <= EVENT_ID_MAX_CHARS:
        raise MappingError(f"{sc.LEANLLM_REQUEST_ID} must be 1 to {EVENT_ID_MAX_CHARS} characters")
    values.update(
        event_id=event_id,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        timestamp=_ns_to_datetime(start_time_ns) or datetime.now(timezone.utc),
        end_timestamp=_ns_to_datetime(end_time_ns),
        labels=labels,
        metadata=metadata,
        status="error" if error else "ok",
    )
    return values


def span_to_event(span: ReadableSpan) -> LLMEvent:
    """The one span -> ``LLMEvent`` mapping. The span must be an LLM span (see ``is_llm_span_attributes``)."""
    return LLMEvent(**_span_values(span))


# Field defaults, for building a row without constructing (and validating) an LLMEvent per span.
_ROW_DEFAULTS: dict[str, Any] = {
    name: field.default
    for name, field in LLMEvent.model_fields.items()
    if field.default_factory is None and not field.is_required()
}
_ROW_FACTORIES: tuple[tuple[str, Any], ...] = tuple(
    (name, field.default_factory) for name, field in LLMEvent.model_fields.items() if field.default_factory is not None
)


def row_defaults() -> dict[str, Any]:
    """Every optional field at its default (fresh containers); the mapping always sets the required ones."""
    row = dict(_ROW_DEFAULTS)
    for name, factory in _ROW_FACTORIES:
        row[name] = factory()
    return row


def span_row_values(span: ReadableSpan) -> dict[str, Any]:
    """The fields ``span`` sets: its row is ``row_defaults()`` updated with these, equal to
    ``span_to_event(span).to_row()`` without building the model (tested).

    Writers that hold the defaults already (the SQL exporter's prepared insert) take only these.
    """
    return _span_values(span)


def _span_values(span: ReadableSpan) -> dict[str, Any]:
    context = span.context
    parent = span.parent
    return _event_values(
        otel_compat.span_attributes(span),  # no copy: the public view's dict() costs a method call per key
        start_time_ns=span.start_time,
        end_time_ns=span.end_time,
        trace_id=format(context.trace_id, "032x") if context is not None else None,
        span_id=format(context.span_id, "016x") if context is not None else None,
        parent_span_id=format(parent.span_id, "016x") if parent is not None else None,
        is_error=span.status.status_code is StatusCode.ERROR,
        status_description=span.status.description,
    )
