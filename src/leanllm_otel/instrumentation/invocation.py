"""One LLM call's span, from start to its single end: the code path shared by sync, async and stream wrappers."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as context_api
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    get_current_span,
)

from leanllm_otel import semconv as sc
from leanllm_otel._internal import log_internal_error
from leanllm_otel.context import (
    CallOptions,
    current_call_options,
    current_context,
)
from leanllm_otel.errors import ErrorKind, error_kind, status_code_of
from leanllm_otel.instrumentation.attributes import request_attributes, response_attributes
from leanllm_otel.instrumentation.call_context import (
    ID_RANDOM,
    chain_advance,
    context_attributes,
    new_event_id,
    rate_and_mode,
    token_counts,
)
from leanllm_otel.instrumentation.credentials import credential_values
from leanllm_otel.instrumentation.gate import Refused
from leanllm_otel.processing.record import CallRecord, handing_over
from leanllm_otel.processing.sampling import SAMPLED_OUT, decide

if TYPE_CHECKING:
    from leanllm_otel.instrumentation.deferred import Deferral, DeferredStart
    from leanllm_otel.instrumentation.gate import Admission, CallGate
    from leanllm_otel.instrumentation.telemetry import Telemetry
    from leanllm_otel.instrumentation.wrappers import OperationSpec


_NO_RESPONSE: Any = object()  # a stream's end, or a call that is not deferred: no response object to read


class Skip(Exception):
    """Raised while starting an invocation when the call must pass through untraced (``log=False``)."""


class Invocation:
    """Owns one span. ``succeed`` / ``fail`` / ``end_stream`` end it; the first one to run wins.

    A call sampled out at start (rate below 1) takes the light path: no SDK span is created, only a non-recording
    span context (so the call's HTTP child spans see an unsampled parent and are dropped with it). Should that call
    fail, the real span is created then, with the original start time and parent, because errors are always kept.
    """

    __slots__ = (
        "_ambient",
        "_args",
        "_deferred",
        "_ended",
        "_kwargs",
        "_options",
        "_parent_context",
        "_per_call_mode",
        "_rate",
        "_spec",
        "admission",
        "event_id",
        "light",
        "mode",
        "operation",
        "record",
        "sampled",
        "span",
        "start_ns",
        "stream",
        "telemetry",
    )

    def __init__(
        self, telemetry: Telemetry, spec: OperationSpec, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> None:
        self.telemetry = telemetry
        self.operation = spec.operation
        self._spec = spec
        self._ended = False
        options = current_call_options()
        ambient = current_context()
        if options is not None and options.context is not None:
            ambient = options.context.merged_over(ambient)
        if (options is not None and options.log is False) or (ambient is not None and ambient.log is False):
            raise Skip
        self._options = options
        self._ambient = ambient
        self._args = args
        self._kwargs = kwargs  # a reference: read at start, and on failure to scrub credentials from the message
        settings = telemetry.settings
        rate, per_call_mode = rate_and_mode(options, ambient, settings.sampling_rate)
        self._rate = rate
        self._per_call_mode = per_call_mode
        self.mode = settings.redaction_mode(per_call_mode)
        self.event_id = (options.request_id if options and options.request_id else None) or new_event_id()
        self.stream = bool(kwargs.get("stream"))
        self.record: CallRecord | None = None
        self.admission: Admission | None = None
        self._deferred: DeferredStart | None = None
        self.start_ns = time.time_ns()
        if rate < 1.0 and telemetry.gate is None:
            current = context_api.get_current()
            parent = get_current_span(current).get_span_context()
            trace_id = parent.trace_id if parent.is_valid else ID_RANDOM.getrandbits(128) or 1
            if not decide(failed=False, trace_id=trace_id, rate=rate).kept:
                self.sampled = False
                self.light = True
                self._parent_context: context_api.Context | None = current
                self.span: Any = NonRecordingSpan(
                    SpanContext(trace_id, ID_RANDOM.getrandbits(64) or 1, False, TraceFlags(TraceFlags.DEFAULT))
                )
                return
        self.light = False
        self.sampled = True
        self._parent_context = None
        self._open_span(self.start_ns, deferral=telemetry.deferral())
        if settings.wants_record(self.mode, per_call_mode is not None):
            self._keep_record(kwargs)
        gate = telemetry.gate
        if gate is not None:
            self._admit(gate, kwargs)

    def _admit(self, gate: CallGate, kwargs: Mapping[str, Any]) -> None:
        """Ask the gate; on a refusal end the span as an error and raise ``Refused`` (the wrapper re-raises the
        gate's exception to the caller)."""
        admission = gate.admit(kwargs, self.stream, getattr(self.span, "attributes", None) or {})
        if admission is not None and admission.refusal is not None:
            self.fail(admission.refusal, admission.refusal_attributes)
            raise Refused(admission.refusal)
        self.admission = admission

    def _open_span(self, start_ns: int, parent: Any = None, deferral: Deferral | None = None) -> None:
        """Start the SDK span with every attribute known before the call (or, with ``deferral``, its stand-in)."""
        attributes = self._start_attributes()
        attributes[sc.LEANLLM_STREAM] = self.stream
        attributes[sc.LEANLLM_REQUEST_ID] = self.event_id
        attributes[sc.LEANLLM_SAMPLING_RATE] = self._rate
        if self._rate < 1.0:
            # The decision drawn at start; the processor follows it rather than redrawing from the span's trace id.
            attributes[sc.LEANLLM_SAMPLED] = self.sampled
        attributes[sc.LEANLLM_REDACTION_MODE] = self.mode.value
        settings = self.telemetry.settings
        context_attributes(attributes, self._options, self._ambient, settings.environment, settings.auto_chain)
        name = f"{self.operation} {attributes[sc.GEN_AI_REQUEST_MODEL]}".strip()
        if deferral is not None:
            deferred = deferral.open(name, attributes, context_api.get_current())
            if deferred is not None:
                self._deferred = deferred
                self.span = deferred.span
                return
        self.span = self.telemetry.tracer.start_span(
            name, context=parent, kind=SpanKind.CLIENT, attributes=attributes, start_time=start_ns
        )

    def _start_attributes(self) -> dict[str, Any]:
        kwargs = self._kwargs
        model = kwargs.get("model")
        position = self._spec.model_arg
        if model is None and position is not None and len(self._args) > position:
            model = self._args[position]
        attributes = request_attributes(self.operation, str(model) if model is not None else "", kwargs)
        if self._spec.output_type is not None:
            attributes[sc.GEN_AI_OUTPUT_TYPE] = self._spec.output_type
        return attributes

    @property
    def options(self) -> CallOptions | None:
        """The per-call options this call was made with (the very object a ``LeanLLM`` client set), or None."""
        return self._options

    def _keep_record(self, kwargs: Mapping[str, Any], *, sampled_in: bool = True) -> CallRecord:
        """The content snapshot: references and a shallow copy of the message list, nothing serialised here (a
        sampled-out call that failed is only scanned: its content never leaves)."""
        settings = self.telemetry.settings
        per_call = self._per_call_mode is not None
        record = self.record = CallRecord(
            span_id=self.span.get_span_context().span_id,
            operation=self.operation,
            mode=self.mode,
            capture=sampled_in and settings.captures(per_call),
            scan=settings.scans,
            api=self._spec.api,
            copy_at_end=sampled_in and settings.copies_content(per_call),
        )
        messages = kwargs.get("messages")
        if isinstance(messages, list):
            record.messages = list(messages)
        for key in ("prompt", "input", "query"):
            if kwargs.get(key) is not None:
                record.prompt = kwargs[key]
        for key in ("instructions", "system", "documents", "file"):  # Responses, Anthropic, rerank, transcription
            if kwargs.get(key) is not None:
                record.extra[key] = kwargs[key]
        tools = kwargs.get("tools") or kwargs.get("functions")
        if tools is not None:
            record.tools = tools
        return record

    # --- endings ---------------------------------------------------------------------------------------------
    def succeed(self, response: Any) -> None:
        if self._ended:
            return
        if self.light:  # sampled out: only what the metrics need, read from the response where they are recorded
            try:
                self._end({}, None, response)
            except Exception:
                log_internal_error("recording a sampled-out call")
            return
        deferred = self._deferred is not None
        # Deferred: the response's fields are read where the span is materialised (a reference travels).
        attributes = {} if deferred else self._response_attributes(response)
        try:
            if self.record is not None:
                self.record.response = response
            self._end(attributes, None, response if deferred else _NO_RESPONSE)
        except Exception:
            log_internal_error("recording a response")

    def _response_attributes(self, response: Any) -> dict[str, Any]:
        try:
            attributes = response_attributes(response)
            if self.operation == sc.OP_EMBEDDINGS:  # output tokens do not apply to embeddings (LiteLLM reports 0)
                attributes.pop(sc.GEN_AI_USAGE_OUTPUT_TOKENS, None)
        except Exception:
            attributes = {}  # the span still ends (and is counted); only the response fields are missing
            log_internal_error("reading a response")
        return attributes

    def fail(self, exc: BaseException, extra: Mapping[str, Any] | None = None) -> None:
        if self._ended:
            return
        try:
            self._end(dict(extra or {}), exc)
        except Exception:
            log_internal_error("recording an error")

    def end_stream(
        self,
        attributes: dict[str, Any],
        exc: BaseException | None,
        chunks: list[Any] | None,
    ) -> None:
        if self._ended:
            return
        try:
            if self.record is not None and chunks is not None:
                self.record.chunks = chunks
            self._end(attributes, exc)
        except Exception:
            log_internal_error("ending a stream")

    def _end(self, attributes: dict[str, Any], exc: BaseException | None, response: Any = _NO_RESPONSE) -> None:
        self._ended = True
        end_ns = time.time_ns()
        if self.light:
            if exc is None:
                self._end_light(attributes, end_ns, response)
                return
            # A sampled-out call failed: errors are always kept, so the real span is made now.
            self.light = False
            self._open_span(self.start_ns, parent=self._parent_context)
        if decide(failed=exc is not None, drawn=self.sampled).kept:  # kept, as far as leanllm's own draw goes
            try:
                chain_advance(self.telemetry, self.event_id)
            except Exception:
                log_internal_error("advancing the call chain")
        deferred = self._deferred
        if deferred is not None:
            if exc is None:
                self._seal_record()  # on the caller's thread: the content is what was sent and returned by now
                deferred.deferral.submit(_Ended(self, attributes, end_ns, response))
            else:  # a failure is materialised before the call returns: errors are always kept
                deferred.deferral.queue.run_now(_Ended(self, attributes, end_ns, response, exc))
            return
        self._close(self.span, attributes, exc, end_ns, seal=True)
        self.telemetry.notify_end(self, self.span, exc)

    def materialise(self, attributes: dict[str, Any], end_ns: int, response: Any, exc: BaseException | None) -> None:
        """A deferred call becomes its SDK span: the ids, timestamps and content of the call."""
        assert self._deferred is not None
        if response is not _NO_RESPONSE:
            attributes = self._response_attributes(response)
        span = self._deferred.start_span(self.start_ns, success=exc is None)
        self._close(span, attributes, exc, end_ns, seal=exc is not None)

    def _close(self, span: Any, attributes: dict[str, Any], exc: BaseException | None, end_ns: int, seal: bool) -> None:
        try:
            self._record_end(span, attributes, exc, end_ns)
        finally:
            # Whatever failed above, the span ends exactly once, an error still as an error: a span left open
            # would be an event lost without a count.
            if exc is not None:
                current = getattr(span, "status", None)
                if current is None or current.status_code is not StatusCode.ERROR:
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            if seal:
                self._seal_record()
            with handing_over(self.record):
                span.end(end_time=end_ns)

    def _seal_record(self) -> None:
        record = self.record
        if record is None:
            return
        try:
            record.seal()
        except Exception:
            # Fail closed: an event without content rather than one whose content may change after the call.
            log_internal_error("copying a call's content")
            record.messages = record.prompt = record.tools = record.response = record.chunks = None
            record.extra = {}

    def _record_end(self, span: Any, attributes: dict[str, Any], exc: BaseException | None, end_ns: int) -> None:
        latency_ms = (end_ns - self.start_ns) / 1e6
        attributes[sc.LEANLLM_LATENCY_MS] = latency_ms
        error_type: str | None = None
        if exc is not None:
            error_type = type(exc).__name__
            attributes[sc.ERROR_TYPE] = error_type
            # The message may echo the prompt: it travels in the record, and the export thread adds it in the
            # form the redaction mode allows. The span itself only says what kind of error this was.
            record = self.record
            if record is None and self.telemetry.settings.scans:  # every error is scanned, sampled in or not
                record = self._keep_record(self._kwargs, sampled_in=False)
            elif record is None:
                record = self.record = CallRecord(
                    span_id=span.get_span_context().span_id,
                    operation=self.operation,
                    mode=self.mode,
                    capture=False,
                    scan=False,
                )
            record.error_message = str(exc)
            record.credentials = credential_values(self._kwargs)
            span.add_event(sc.EXCEPTION_EVENT, {sc.EXCEPTION_TYPE: f"{type(exc).__module__}.{type(exc).__qualname__}"})
            span.set_status(Status(StatusCode.ERROR, error_type))
            kind = error_kind(exc)
            attributes[sc.LEANLLM_ERROR_KIND] = kind.value
            status = status_code_of(exc)
            # LiteLLM labels a refused connection "500": no HTTP response arrived, so record no status code.
            if status is not None and kind not in (ErrorKind.CONNECTION, ErrorKind.TIMEOUT):
                attributes[sc.HTTP_RESPONSE_STATUS_CODE] = status
        span.set_attributes(attributes)
        self.telemetry.record_metrics(
            self.operation, getattr(span, "attributes", None) or {}, attributes, latency_ms / 1000.0, error_type
        )

    def _end_light(self, attributes: dict[str, Any], end_ns: int, response: Any) -> None:
        """A sampled-out success: the sampled-out count, and metrics (on the materialising thread when deferred)."""
        SAMPLED_OUT.add()
        deferral = self.telemetry.deferral()
        if deferral is not None:
            deferral.submit(_Ended(self, attributes, end_ns, response))
            return
        self.record_light_metrics(attributes, end_ns, response)
        self.telemetry.notify_end(self, self.span, None)

    def record_light_metrics(self, attributes: dict[str, Any], end_ns: int, response: Any) -> None:
        if response is not _NO_RESPONSE:
            attributes = token_counts(response)
            if self.operation == sc.OP_EMBEDDINGS:
                attributes.pop(sc.GEN_AI_USAGE_OUTPUT_TOKENS, None)
        start = self._start_attributes()
        self.telemetry.record_metrics(self.operation, start, attributes, (end_ns - self.start_ns) / 1e9, None)


class _Ended:
    """A deferred success waiting for the materialising thread: the invocation and what its end added."""

    __slots__ = ("attributes", "end_ns", "exc", "invocation", "response")

    def __init__(
        self,
        invocation: Invocation,
        attributes: dict[str, Any],
        end_ns: int,
        response: Any,
        exc: BaseException | None = None,
    ) -> None:
        self.invocation = invocation
        self.attributes = attributes
        self.end_ns = end_ns
        self.response = response
        self.exc = exc

    def materialise(self) -> None:
        invocation = self.invocation
        if invocation.light:
            invocation.record_light_metrics(self.attributes, self.end_ns, self.response)
        else:
            invocation.materialise(self.attributes, self.end_ns, self.response, self.exc)
