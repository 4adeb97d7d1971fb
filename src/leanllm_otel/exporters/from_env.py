"""``LeanLLMSpanExporter``: the ``leanllm`` traces exporter of ``OTEL_TRACES_EXPORTER``.

Constructible with no arguments (``opentelemetry-instrument`` does that); ``LEANLLM_DATABASE_URL`` selects the SQL
store and ``LEANLLM_API_KEY`` the LeanLLM service. It delegates everything to that exporter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from leanllm_otel.config import ConfigError, LeanLLMConfig


class LeanLLMSpanExporter(SpanExporter):
    """The SQL or service exporter chosen by ``LEANLLM_*``."""

    def __init__(self, config: LeanLLMConfig | None = None) -> None:
        from leanllm_otel.pipeline import persistence_exporter

        self.config = config if config is not None else LeanLLMConfig.from_env()
        inner = persistence_exporter(self.config) if self.config.enable_persistence else None
        if inner is None:
            raise ConfigError(
                "OTEL_TRACES_EXPORTER=leanllm needs LEANLLM_DATABASE_URL (SQL store) or LEANLLM_API_KEY "
                "(LeanLLM service), and LEANLLM_ENABLE_PERSISTENCE not false"
            )
        self.inner: SpanExporter = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export(spans)

    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        self.inner.shutdown(*args, **kwargs)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
