"""Each client's own sinks: when a client's store, service or renderer differ from the process pipeline's, its calls
are routed (``processing/routing.py``) to its own batch processor instead of the pipeline's store.

What can differ per client: the store or service and everything about delivering to it (queue, batch, retries),
the renderer (hash key, detector patterns, content limits), and everything applied per call (sampling rate,
redaction mode, environment, auto-chain on). What cannot: settings the instrumentation reads for every call in the
process, or that belong to the one ``TracerProvider`` / guard; a client asking for a different value fails at
construction (``ConfigError`` naming the fields).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from leanllm_otel import active
from leanllm_otel.config import ConfigError, LeanLLMConfig
from leanllm_otel.exporters.delivery import DropCounter
from leanllm_otel.exporters.persistence import persistence_exporter
from leanllm_otel.pipeline import _bounded, batch_processor_for, renderer_for
from leanllm_otel.processing.rendering import Renderer
from leanllm_otel.processing.routing import Route, router_of
from leanllm_otel.settings import TelemetrySettings

if TYPE_CHECKING:
    from leanllm_otel.pipeline import Pipeline

# Applied per call through ``CallOptions`` / the client itself: never a reason for a route of its own.
_PER_CALL_FIELDS = {
    "sampling_rate",
    "redaction_mode",
    "capture_content",
    "environment",
    "auto_chain",
    "debug",
    "last_event_buffer",
}
# Read by the instrumentation at call start for every call in the process (``TelemetrySettings``).
_CALL_TIME_FIELDS = ("security_scan", "auto_normalize")
# Belong to the process pipeline's TracerProvider (resource) and guard.
_PIPELINE_FIELDS = ("service_name", "enforcement_policy")


def front_processor(pipeline: Pipeline | None) -> Any:
    """The ``LeanLLMSpanProcessor`` in front of this process's export chain, or None."""
    if pipeline is not None:
        return pipeline.processor
    return active.front


def live_config(pipeline: Pipeline | None) -> LeanLLMConfig | None:
    """The configuration the process's sinks were built from (None: no leanllm processor to route through)."""
    if pipeline is not None:
        return pipeline.config
    if front_processor(None) is not None:  # opentelemetry-instrument: built from LEANLLM_* at startup
        return LeanLLMConfig.from_env()
    return None


def has_sinks(config: LeanLLMConfig) -> bool:
    return config.enable_persistence and config.persistence_target is not None


def shares_sinks(mine: LeanLLMConfig, live: LeanLLMConfig | None) -> bool:
    """Whether ``mine`` asks for exactly the sinks (and renderer) the process pipeline already feeds."""
    if live is None:
        return not has_sinks(mine)
    if not has_sinks(mine) and not has_sinks(live):
        return True
    return mine.model_dump(exclude=_PER_CALL_FIELDS) == live.model_dump(exclude=_PER_CALL_FIELDS)


def check_compatible(
    mine: LeanLLMConfig, live_settings: TelemetrySettings, pipeline: Pipeline | None, routed: bool
) -> None:
    """Raise ``ConfigError`` naming every setting of ``mine`` this process cannot honour for one client only."""
    own = TelemetrySettings.from_config(mine)
    conflicts = [name for name in _CALL_TIME_FIELDS if getattr(own, name) != getattr(live_settings, name)]
    if pipeline is not None:
        conflicts += [
            name
            for name in _PIPELINE_FIELDS
            if getattr(mine, name) is not None and getattr(mine, name) != getattr(pipeline.config, name)
        ]
    if routed and front_processor(pipeline) is None:
        conflicts += [name for name in ("database_url", "leanllm_api_key") if getattr(mine, name) is not None]
        conflicts = conflicts or ["enable_persistence"]
        reason = "LiteLLM is instrumented without leanllm's span processor (use leanllm_otel.configure())"
    else:
        reason = "they are process-wide, and this process's pipeline was built with other values"
    if conflicts:
        raise ConfigError(
            f"LeanLLM client: cannot honour {', '.join(conflicts)} for this client alone: {reason}; "
            "use the same values in every client of the process"
        )


class ClientSinks:
    """A client's own route: its batch processor, drops and renderer (or no processor, without persistence)."""

    def __init__(self, config: LeanLLMConfig, pipeline: Pipeline | None) -> None:
        self.drops = DropCounter()
        self.renderer: Renderer = renderer_for(config)
        processors = []
        exporter = persistence_exporter(config, self.drops) if has_sinks(config) else None
        if exporter is not None:
            guard = pipeline.guard if pipeline is not None else None
            if guard is not None:
                exporter = guard.wrap_exporter(exporter)
            processors.append(batch_processor_for(exporter, config, self.drops, self.renderer))
        self.route = Route(processors)

    def attach(self, pipeline: Pipeline | None) -> None:
        """Make the process's front processor route (idempotent; again after a re-instrumentation)."""
        front = front_processor(pipeline)
        if front is not None:
            router_of(front)

    def flush(self, timeout_millis: int) -> bool:
        return _bounded(lambda: self.route.force_flush(timeout_millis), timeout_millis / 1000.0, "client flush")

    def close(self, timeout_millis: int) -> None:
        _bounded(self.route.shutdown, timeout_millis / 1000.0, "client shutdown")
