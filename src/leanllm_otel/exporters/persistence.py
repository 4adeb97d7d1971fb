"""The persistence exporter ``LEANLLM_*`` asks for: the SQL store or the LeanLLM service."""

from __future__ import annotations

from opentelemetry.sdk.trace.export import SpanExporter

from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.exporters.delivery import DropCounter

__all__ = ["persistence_exporter"]


def persistence_exporter(config: LeanLLMConfig, drops: DropCounter | None = None) -> SpanExporter | None:
    """The SQL or service exporter ``LEANLLM_*`` asks for, or None."""
    target = config.persistence_target
    if target == "sql":
        from leanllm_otel.exporters.sql import SQLSpanExporter

        return SQLSpanExporter(config=config, drops=drops)
    if target == "service":
        from leanllm_otel.exporters.service import LeanLLMServiceExporter

        exporter = LeanLLMServiceExporter(config=config)
        if drops is not None:
            exporter.drops.add_callback(lambda count, reason: drops.add(count, reason))
        return exporter
    return None
