"""What an instrumented call needs at hand: tracer, metric instruments, settings and end-of-call listeners."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import Meter, MeterProvider, get_meter
from opentelemetry.trace import Span, Tracer, TracerProvider, get_tracer

from leanllm_otel import semconv as sc
from leanllm_otel._internal import log_internal_error
from leanllm_otel.instrumentation.deferred import Deferral, DeferralCache
from leanllm_otel.settings import TelemetrySettings
from leanllm_otel.version import __version__

if TYPE_CHECKING:
    from leanllm_otel.instrumentation.gate import CallGate
    from leanllm_otel.instrumentation.invocation import Invocation

EndListener = Callable[["Invocation", Span, "BaseException | None"], None]

_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)

# Metric attributes: bounded cardinality only (no ids, no free text).
_METRIC_ATTRIBUTE_KEYS = (
    sc.GEN_AI_OPERATION_NAME,
    sc.GEN_AI_PROVIDER_NAME,
    sc.GEN_AI_REQUEST_MODEL,
    sc.GEN_AI_RESPONSE_MODEL,
    sc.SERVER_ADDRESS,
    sc.SERVER_PORT,
)


class Telemetry:
    """Created by the instrumentor; shared by every wrapped call."""

    def __init__(
        self,
        settings: TelemetrySettings,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self.settings = settings
        self.tracer: Tracer = get_tracer(
            sc.INSTRUMENTATION_SCOPE, __version__, tracer_provider, schema_url="https://opentelemetry.io/schemas/1.37.0"
        )
        meter: Meter = get_meter(sc.INSTRUMENTATION_SCOPE, __version__, meter_provider)
        self.duration = meter.create_histogram(
            sc.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        self.token_usage = meter.create_histogram(
            sc.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(_TOKEN_BUCKETS),
        )
        self.time_to_first_chunk = meter.create_histogram(
            sc.METRIC_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk of a streamed response",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        self._listeners: tuple[EndListener, ...] = ()
        self._lock = threading.Lock()
        # An opt-in gate (the guardrails' Guard): consulted at span start and end only when not None.
        self.gate: CallGate | None = None
        self._deferrals = DeferralCache(self.tracer)

    def install_gate(self, gate: CallGate) -> None:
        """Consult ``gate`` on every call from now on (replacing any other)."""
        self.gate = gate

    def remove_gate(self, gate: CallGate) -> None:
        """Stop consulting ``gate`` (nothing happens when another one is installed)."""
        if self.gate is gate:
            self.gate = None

    def deferral(self) -> Deferral | None:
        """The deferred span path (``deferred.py``), when the pipeline is ours and nothing needs the span at once."""
        if self.gate is not None or self._listeners:
            return None
        return self._deferrals.get()

    def add_end_listener(self, listener: EndListener) -> None:
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def remove_end_listener(self, listener: EndListener) -> None:
        with self._lock:
            self._listeners = tuple(item for item in self._listeners if item is not listener)

    def notify_end(self, invocation: Invocation, span: Span, exc: BaseException | None) -> None:
        gate = self.gate
        if gate is not None:
            try:
                gate.call_ended(invocation.admission, span, exc)
            except Exception:
                log_internal_error("a call gate failed at the end of a call")
        for listener in self._listeners:
            try:
                listener(invocation, span, exc)
            except Exception:
                log_internal_error("an end-of-call listener failed")

    def record_metrics(
        self,
        operation: str,
        start_attributes: Mapping[str, Any],
        end_attributes: Mapping[str, Any],
        duration_s: float,
        error_type: str | None,
    ) -> None:
        attributes: dict[str, Any] = {}
        for key in _METRIC_ATTRIBUTE_KEYS:
            value = end_attributes.get(key)
            if value is None:
                value = start_attributes.get(key)
            if value is not None:
                attributes[key] = value
        attributes[sc.GEN_AI_OPERATION_NAME] = operation
        if error_type is not None:
            attributes[sc.ERROR_TYPE] = error_type
        self.duration.record(duration_s, attributes)
        input_tokens = end_attributes.get(sc.GEN_AI_USAGE_INPUT_TOKENS)
        if isinstance(input_tokens, int):
            self.token_usage.record(input_tokens, {**attributes, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_INPUT})
        output_tokens = end_attributes.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS)
        if isinstance(output_tokens, int):
            self.token_usage.record(output_tokens, {**attributes, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_OUTPUT})
        ttft_ms = end_attributes.get(sc.LEANLLM_TTFT_MS)
        if isinstance(ttft_ms, (int, float)):
            self.time_to_first_chunk.record(ttft_ms / 1000.0, attributes)
