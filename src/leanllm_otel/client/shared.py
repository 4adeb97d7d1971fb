"""One pipeline per process: the pipeline clients build, shared and reference-counted.

LiteLLM is patched process-wide, so there is one instrumentation and one export pipeline per process. The first
``LeanLLM`` (when nothing instrumented LiteLLM yet) builds it with ``pipeline.configure(config)``; every later client
shares it, and the last client to ``close()`` shuts it down. When the application set things up itself
(``leanllm_otel.configure()``, ``LeanLLMInstrumentor().instrument()`` or ``opentelemetry-instrument``), clients attach
to that and never shut it down. A client's own store, when it differs from the pipeline's, is not part of this
pipeline: see :mod:`leanllm_otel.client.routes`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from leanllm_otel import pipeline as pipeline_module
from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.instrumentation.instrumentor import LeanLLMInstrumentor
from leanllm_otel.redaction_mode import RedactionMode
from leanllm_otel.settings import TelemetrySettings

if TYPE_CHECKING:
    from leanllm_otel.pipeline import Pipeline


def current_pipeline() -> Pipeline | None:
    return pipeline_module.active_pipeline()


class SharedPipeline:
    """The pipeline clients built, reference-counted so the last client to close shuts it down."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.pipeline: Pipeline | None = None
        self.users = 0

    def acquire(self, config: LeanLLMConfig) -> tuple[Pipeline | None, bool]:
        """(pipeline in force, whether this client holds a reference on the shared one)."""
        with self.lock:
            instrumentor = LeanLLMInstrumentor()
            if not instrumentor.is_instrumented_by_opentelemetry or instrumentor.telemetry is None:
                self.pipeline = pipeline_module.configure(config)
                self.users = 0
            current = current_pipeline()
            if current is not None and current is self.pipeline:
                self.users += 1
                return current, True
            return current, False

    def release(self, pipeline: Pipeline | None) -> None:
        with self.lock:
            if pipeline is None or pipeline is not self.pipeline:
                return
            self.users -= 1
            if self.users <= 0:
                self.pipeline = None
                self.users = 0
                pipeline.shutdown()


SHARED = SharedPipeline()


@dataclass(frozen=True)
class ConfigLevel:
    """This client's config values that differ from the shared pipeline's; applied at config precedence."""

    sample: float | None = None
    redaction_mode: RedactionMode | None = None
    environment: str | None = None
    chain: bool = False

    @classmethod
    def between(cls, mine: TelemetrySettings, live: TelemetrySettings) -> ConfigLevel:
        my_mode = mine.redaction_mode(None)
        mode_differs = my_mode is not live.redaction_mode(None) or mine.capture_content != live.capture_content
        return cls(
            sample=mine.sampling_rate if mine.sampling_rate != live.sampling_rate else None,
            redaction_mode=my_mode if mode_differs else None,
            environment=mine.environment if mine.environment != live.environment else None,
            chain=mine.auto_chain and not live.auto_chain,
        )

    @property
    def applies(self) -> bool:
        return self.sample is not None or self.redaction_mode is not None or bool(self.environment) or self.chain
