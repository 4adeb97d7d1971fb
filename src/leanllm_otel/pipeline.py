"""``configure()``: the one-call setup, and the ``opentelemetry-instrument`` configurator built on the same parts.

Both produce the same chain::

    TracerProvider(sampler=LeanLLMSampler(app sampler))
      └─ LeanLLMSpanProcessor                      sampling, redaction hand-off, counters
           ├─ LeanLLMBatchSpanProcessor(render -> SQLSpanExporter | LeanLLMServiceExporter)
           ├─ LeanLLMBatchSpanProcessor(render -> OTLPSpanExporter)          when OTEL_* asks for it
           └─ LeanLLMBatchSpanProcessor(render -> any exporter you pass)
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as trace_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

from leanllm_otel import active, otel_compat
from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.exporters.batching import LeanLLMBatchSpanProcessor
from leanllm_otel.exporters.delivery import DropCounter
from leanllm_otel.exporters.persistence import persistence_exporter
from leanllm_otel.instrumentation.instrumentor import LeanLLMInstrumentor
from leanllm_otel.processing.processor import LeanLLMSpanProcessor
from leanllm_otel.processing.rendering import ContentRenderingExporter, Renderer
from leanllm_otel.processing.routing import router_of, shutdown_routes
from leanllm_otel.processing.sampling import LeanLLMSampler
from leanllm_otel.settings import TelemetrySettings

if TYPE_CHECKING:
    from leanllm_otel.guardrails.guard import Guard

logger = logging.getLogger(__name__)

_OTLP_NAMES = ("otlp", "otlp_proto_http", "otlp_proto_grpc")


def _hash_key(config: LeanLLMConfig) -> bytes | None:
    key = config.hash_key
    return key.get_secret_value().encode() if key is not None else None


def settings_for(config: LeanLLMConfig) -> TelemetrySettings:
    return TelemetrySettings.from_config(config)


def otlp_protocol_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """``"grpc"`` or ``"http"`` when ``OTEL_TRACES_EXPORTER`` or an OTLP endpoint variable asks for OTLP, else None."""
    env = os.environ if environ is None else environ
    names = [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    wanted = any(n in _OTLP_NAMES for n in names) or (
        not names and bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    )
    if not wanted:
        return None
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    ).strip()
    return "grpc" if "otlp_proto_grpc" in names or protocol == "grpc" else "http"


def otlp_exporter_from_env(environ: Mapping[str, str] | None = None) -> SpanExporter | None:
    """An OTLP span exporter when ``OTEL_TRACES_EXPORTER`` or an OTLP endpoint variable asks for one."""
    protocol = otlp_protocol_from_env(environ)
    if protocol is None:
        return None
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter()


def default_sampler() -> Sampler:
    """The application's head sampler from ``OTEL_TRACES_SAMPLER`` (SDK default: parent-based always-on)."""
    try:
        return otel_compat.sampler_from_env()
    except Exception:
        logger.warning("leanllm-otel: could not read OTEL_TRACES_SAMPLER; using parentbased_always_on")
        return ParentBased(TraceIdRatioBased(1.0))


class Pipeline:
    """What ``configure()`` built; flush it, shut it down, read its counters."""

    def __init__(
        self,
        config: LeanLLMConfig,
        provider: TracerProvider,
        processor: LeanLLMSpanProcessor,
        exporters: Sequence[SpanExporter],
        batch_processors: Sequence[SpanProcessor],
        drops: DropCounter,
        instrumentor: LeanLLMInstrumentor | None,
        owns_provider: bool,
        guard: Guard | None = None,
    ) -> None:
        self.config = config
        self.provider = provider
        self.processor = processor
        self.exporters = tuple(exporters)
        self.batch_processors = tuple(batch_processors)
        self.drops = drops
        self.instrumentor = instrumentor
        self.owns_provider = owns_provider
        self.guard = guard
        self._shutdown_lock = threading.Lock()
        self._is_shut_down = False

    @property
    def counters(self) -> dict[str, int]:
        """kept / kept_errors / sampled_out / head_sampled_out, plus ``dropped`` (queue and delivery drops)."""
        return {**self.processor.counters.snapshot(), "dropped": self.drops.total}

    @property
    def dropped_events_count(self) -> int:
        return self.drops.total

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """Export everything queued so far (bounded by ``timeout_millis``, default the export timeout)."""
        timeout = timeout_millis if timeout_millis is not None else self.config.export_timeout_ms
        return _bounded(lambda: self.processor.force_flush(timeout), timeout / 1000.0, "force_flush")

    def shutdown(self, timeout_millis: int | None = None) -> None:
        """Flush and stop the export chain, within ``timeout_millis``; a second call does nothing."""
        with self._shutdown_lock:
            if self._is_shut_down:
                return
            self._is_shut_down = True
        timeout = timeout_millis if timeout_millis is not None else self.config.shutdown_timeout_ms
        if self.guard is not None:
            self.guard.close(timeout_s=min(5.0, timeout / 1000.0))
        _bounded(self.processor.shutdown, timeout / 1000.0, "shutdown")
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        if self.instrumentor is not None and self.instrumentor.is_instrumented_by_opentelemetry:
            self.instrumentor.uninstrument()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def _bounded(action: Callable[[], Any], timeout_s: float, what: str) -> bool:
    """Run ``action`` on a helper thread and stop waiting after ``timeout_s`` (a hung backend cannot hang us)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(action())
        except Exception:
            logger.exception("leanllm-otel: %s failed", what)
            outcome.append(False)

    worker = threading.Thread(target=run, name=f"leanllm-{what}", daemon=True)
    worker.start()
    worker.join(max(0.0, timeout_s))
    if worker.is_alive():
        logger.warning("leanllm-otel: %s did not finish within %.1f s; giving up", what, timeout_s)
        return False
    return bool(outcome and outcome[0] is not False)


_CONCURRENT_EXPORTS = 2


def batch_processor_for(
    exporter: SpanExporter, config: LeanLLMConfig, drops: DropCounter, renderer: Renderer
) -> LeanLLMBatchSpanProcessor:
    """One exporter's batch processor; its export threads render content with ``renderer`` first."""
    # Exporters safe to call from several threads (the SQL store) write one batch while the next is mapped.
    concurrent = _CONCURRENT_EXPORTS if getattr(exporter, "supports_concurrent_export", False) is True else 1
    return LeanLLMBatchSpanProcessor(
        ContentRenderingExporter(exporter, renderer), config, drops=drops, concurrent_exports=concurrent
    )


def renderer_for(config: LeanLLMConfig) -> Renderer:
    """The renderer of ``config``'s redaction settings and hash key."""
    return Renderer(settings_for(config), hash_key=_hash_key(config))


def build_processor(
    config: LeanLLMConfig,
    drops: DropCounter,
    exporters: Sequence[SpanExporter],
    guard: Guard | None = None,
) -> tuple[LeanLLMSpanProcessor, list[SpanProcessor]]:
    """The processor chain: ``LeanLLMSpanProcessor`` fronting one batch processor per exporter."""
    if guard is not None:
        exporters = [guard.wrap_exporter(exporter) for exporter in exporters]
    settings = settings_for(config)
    processor = LeanLLMSpanProcessor(settings, renderer=renderer_for(config), drop_counter=drops)
    batch_processors: list[SpanProcessor] = []
    for exporter in exporters:
        batch = batch_processor_for(exporter, config, drops, processor.renderer)
        processor.add_span_processor(batch)
        batch_processors.append(batch)
    return processor, batch_processors


_ACTIVE: list[Pipeline] = active.pipelines  # strong references: a pipeline nobody holds must still flush at exit
_OWNED_PROVIDERS: list[TracerProvider] = []  # installed by configure(); shut down (bounded) at exit


def configure(
    config: LeanLLMConfig | None = None,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: Any = None,
    exporters: Sequence[SpanExporter] = (),
    otlp: bool | None = None,
    instrument: bool = True,
    on_dropped_events: Callable[[int, str], None] | None = None,
    **overrides: Any,
) -> Pipeline:
    """Set up leanllm-otel in one call and return the ``Pipeline``.

    - ``config`` (or ``LeanLLMConfig.from_env(**overrides)``, e.g. ``configure(database_url="sqlite:///e.db")``)
      chooses the SQL store or the LeanLLM service.
    - The application's SDK ``TracerProvider`` is used when there is one (``tracer_provider=`` or the global one);
      otherwise one is created with ``LeanLLMSampler`` around the ``OTEL_TRACES_SAMPLER`` sampler and installed.
      An existing provider is never replaced. Nothing is printed to stdout.
    - An OTLP exporter is added when ``otlp=True`` or, with ``otlp=None``, when ``OTEL_TRACES_EXPORTER`` /
      ``OTEL_EXPORTER_OTLP_ENDPOINT`` ask for one. ``exporters`` adds your own; all sit behind the same processor.
    - LiteLLM is instrumented unless ``instrument=False``. Shutdown is registered at exit.
    """
    if config is None:
        config = LeanLLMConfig.from_env(**overrides)
    elif overrides:
        config = config.replace(**overrides)
    drops = DropCounter([on_dropped_events] if on_dropped_events is not None else [])

    owns_provider = False
    provider = tracer_provider
    if provider is None:
        current = trace_api.get_tracer_provider()
        if isinstance(current, TracerProvider):
            provider = current
        else:
            resource = Resource.create({"service.name": config.service_name} if config.service_name else {})
            # Our bounded at-exit shutdown owns this provider; the SDK's own exit hook would wait on every
            # exporter in turn, without an overall limit.
            provider = TracerProvider(
                sampler=LeanLLMSampler(default_sampler()), resource=resource, shutdown_on_exit=False
            )
            trace_api.set_tracer_provider(provider)
            owns_provider = True
            if trace_api.get_tracer_provider() is not provider:  # someone else won the race
                provider = trace_api.get_tracer_provider()  # type: ignore[assignment]
                owns_provider = False
            else:
                _OWNED_PROVIDERS.append(provider)
    if not isinstance(provider.sampler, LeanLLMSampler):
        logger.debug(
            "leanllm-otel: the application's TracerProvider does not use LeanLLMSampler; LLM errors in traces its "
            "head sampler drops are not recorded (wrap its sampler: TracerProvider(sampler=LeanLLMSampler(...)))"
        )

    all_exporters: list[SpanExporter] = []
    store = persistence_exporter(config, drops) if config.enable_persistence else None
    if store is not None:
        all_exporters.append(store)
    if otlp is None:
        otlp_exporter = otlp_exporter_from_env()
    elif otlp:
        otlp_exporter = otlp_exporter_from_env({**os.environ, "OTEL_TRACES_EXPORTER": "otlp"})
    else:
        otlp_exporter = None
    if otlp_exporter is not None:
        all_exporters.append(otlp_exporter)
    for exporter in exporters:
        # A leanllm exporter built by the caller counts its own delivery drops: report them here too.
        own = getattr(exporter, "drops", None)
        if isinstance(own, DropCounter) and own is not drops:
            own.add_callback(drops.add)
        all_exporters.append(exporter)

    from leanllm_otel.guardrails.config import guard_from_config  # heavy (SQL ledger); imported on use

    guard = guard_from_config(config)  # None unless enforcement, budgets, alerts or anomalies are configured
    processor, batch_processors = build_processor(config, drops, all_exporters, guard)
    if store is not None:
        # The pipeline's own store receives unrouted calls only; a client with other sinks routes around it.
        router_of(processor).mark_local(batch_processors[0])
    provider.add_span_processor(processor)

    instrumentor: LeanLLMInstrumentor | None = None
    if instrument:
        instrumentor = LeanLLMInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        instrumentor.instrument(tracer_provider=provider, meter_provider=meter_provider, settings=settings_for(config))
        if guard is not None:
            guard.attach(instrumentor)

    pipeline = Pipeline(
        config, provider, processor, all_exporters, batch_processors, drops, instrumentor, owns_provider, guard
    )
    _ACTIVE.append(pipeline)
    return pipeline


def active_pipeline() -> Pipeline | None:
    """The most recent live ``configure()`` pipeline that instrumented LiteLLM, if any."""
    for candidate in reversed(_ACTIVE):
        if candidate.instrumentor is not None:
            return candidate
    return None


@atexit.register
def _shutdown_at_exit() -> None:
    deadline = time.monotonic() + 10.0
    for pipeline in list(_ACTIVE):
        remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
        try:
            pipeline.shutdown(min(remaining_ms, pipeline.config.shutdown_timeout_ms))
        except Exception:
            logger.exception("leanllm-otel: shutdown at exit failed")
    shutdown_routes(max(0.0, deadline - time.monotonic()))  # clients never closed
    # The providers configure() installed have no SDK exit hook (see configure): flush whatever else the
    # application attached to them, within what is left of the budget.
    for provider in _OWNED_PROVIDERS:
        remaining_s = max(0.0, deadline - time.monotonic())
        _bounded(provider.shutdown, min(remaining_s, 5.0), "provider shutdown")
