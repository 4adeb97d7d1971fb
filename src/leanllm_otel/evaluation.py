"""Scores leave the process as semconv ``gen_ai.evaluation.result`` events (OpenTelemetry log records).

The record is parented to the evaluated call's span (its trace and span id, when the event is known) and carries
``gen_ai.evaluation.name``, ``gen_ai.evaluation.score.value`` (numbers, booleans as 1/0),
``gen_ai.evaluation.score.label`` (categories, booleans as "true"/"false"), ``gen_ai.evaluation.explanation`` (the
comment), ``gen_ai.response.id`` and the event id.

Where records go (:func:`emitter_from_environment`): to the application's SDK ``LoggerProvider`` when one is set
globally; otherwise, when OTLP export is configured for traces (``OTEL_TRACES_EXPORTER=otlp``, an OTLP endpoint
variable, or a ``configure(otlp=True)`` pipeline), to a private provider with an OTLP log exporter whose endpoint
follows the usual variables (``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT``, ``OTEL_EXPORTER_OTLP_ENDPOINT``, else the traces
endpoint with ``/v1/logs``). Otherwise nowhere. Emission never raises.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry._logs import SeverityNumber, get_logger_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from leanllm_otel import semconv as sc
from leanllm_otel.scores import Score
from leanllm_otel.version import __version__

__all__ = ["EvaluatedCall", "EvaluationEmitter", "emitter_from_environment", "evaluation_attributes"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluatedCall:
    """What the record needs of the scored event (ids as lowercase hex, as stored)."""

    trace_id: str | None = None
    span_id: str | None = None
    response_id: str | None = None


def evaluation_attributes(score: Score, call: EvaluatedCall | None) -> dict[str, Any]:
    """The attributes of the ``gen_ai.evaluation.result`` record for ``score``."""
    attributes: dict[str, Any] = {sc.GEN_AI_EVALUATION_NAME: score.name, sc.LEANLLM_REQUEST_ID: score.event_id}
    if score.value is not None:
        attributes[sc.GEN_AI_EVALUATION_SCORE_VALUE] = score.value
    if score.label is not None:
        attributes[sc.GEN_AI_EVALUATION_SCORE_LABEL] = score.label
    if score.comment:
        attributes[sc.GEN_AI_EVALUATION_EXPLANATION] = score.comment
    if call is not None and call.response_id:
        attributes[sc.GEN_AI_RESPONSE_ID] = call.response_id
    return attributes


def _parent_context(call: EvaluatedCall | None) -> Any:
    if call is None or not call.trace_id or not call.span_id:
        return None
    try:
        span_context = trace_api.SpanContext(
            trace_id=int(call.trace_id, 16),
            span_id=int(call.span_id, 16),
            is_remote=True,
            trace_flags=trace_api.TraceFlags(trace_api.TraceFlags.SAMPLED),
        )
    except ValueError:
        return None
    if not span_context.is_valid:
        return None
    return trace_api.set_span_in_context(trace_api.NonRecordingSpan(span_context))


class EvaluationEmitter:
    """Emits evaluation records through ``provider`` (an SDK ``LoggerProvider``)."""

    def __init__(self, provider: Any) -> None:
        self._logger = provider.get_logger(sc.INSTRUMENTATION_SCOPE, __version__)
        self._provider = provider

    def emit(self, score: Score, call: EvaluatedCall | None = None) -> bool:
        """Emit one record; False (logged, never raised) when that failed."""
        try:
            self._logger.emit(
                event_name=sc.GEN_AI_EVALUATION_RESULT_EVENT,
                timestamp=int(score.created_at.timestamp() * 1e9),
                context=_parent_context(call),
                severity_number=SeverityNumber.INFO,
                attributes=evaluation_attributes(score, call),
            )
            return True
        except Exception:
            logger.warning("leanllm-otel: could not emit the evaluation event of %s", score.score_id, exc_info=True)
            return False

    def flush(self, timeout_ms: int = 5000) -> bool:
        try:
            return bool(self._provider.force_flush(timeout_ms))
        except Exception:
            logger.warning("leanllm-otel: flushing evaluation events failed", exc_info=True)
            return False


def _logs_endpoint(env: Mapping[str, str]) -> str | None:
    """The OTLP/HTTP logs URL to pass explicitly, or None to let the exporter read the standard variables."""
    if env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None
    traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if traces.endswith("/v1/traces"):
        return traces[: -len("/v1/traces")] + "/v1/logs"
    return None


def _private_provider(protocol: str, env: Mapping[str, str], service_name: str | None) -> LoggerProvider:
    resource = Resource.create({"service.name": service_name} if service_name else {})
    provider = LoggerProvider(resource=resource)
    exporter: Any
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter

        exporter = GrpcLogExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        exporter = OTLPLogExporter(endpoint=_logs_endpoint(env))
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    return provider


_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
_shared_lock = threading.Lock()
_shared: dict[tuple[str, str | None], EvaluationEmitter] = {}


def emitter_from_environment(
    *, service_name: str | None = None, otlp_configured: bool = False, environ: Mapping[str, str] | None = None
) -> EvaluationEmitter | None:
    """The emitter for this process (see the module docstring), or None when no OTLP export is configured.

    ``otlp_configured``: a pipeline of this process exports OTLP although the environment does not say so.
    Private providers are shared per endpoint configuration and flushed at exit by the SDK.
    """
    global_provider = get_logger_provider()
    if isinstance(global_provider, LoggerProvider):
        return EvaluationEmitter(global_provider)
    from leanllm_otel.pipeline import otlp_protocol_from_env

    env = os.environ if environ is None else environ
    protocol = otlp_protocol_from_env(env) or ("http" if otlp_configured else None)
    if protocol is None:
        return None
    key = (protocol, _logs_endpoint(env) or env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") or env.get(_OTLP_ENDPOINT))
    with _shared_lock:
        emitter = _shared.get(key)
        if emitter is None:
            emitter = EvaluationEmitter(_private_provider(protocol, env, service_name))
            _shared[key] = emitter
        return emitter
