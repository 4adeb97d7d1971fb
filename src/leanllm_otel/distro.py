"""Zero-code support: the ``opentelemetry-instrument`` configurator.

``opentelemetry-instrument`` loads one configurator; ours runs the SDK's standard setup (resource, metrics, logs,
``OTEL_TRACES_EXPORTER``) with two changes: the head sampler is wrapped in ``LeanLLMSampler``, and every trace
exporter is placed behind one ``LeanLLMSpanProcessor``, so sampling and redaction apply to OTLP exactly as to the
SQL store. With ``opentelemetry-distro`` also installed, pick ours with ``OTEL_PYTHON_CONFIGURATOR=leanllm``.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from leanllm_otel import active, otel_compat
from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.exporters.batching import LeanLLMBatchSpanProcessor
from leanllm_otel.exporters.delivery import DropCounter
from leanllm_otel.exporters.from_env import LeanLLMSpanExporter
from leanllm_otel.pipeline import build_processor, default_sampler
from leanllm_otel.processing.processor import LeanLLMSpanProcessor
from leanllm_otel.processing.routing import router_of
from leanllm_otel.processing.sampling import LeanLLMSampler


class _Placeholder(SpanProcessor):
    """What the SDK adds to the provider per exporter: nothing; the real batch processor sits behind ours."""

    def on_end(self, span: ReadableSpan) -> None:
        return None


class LeanLLMConfigurator(otel_compat.sdk_configurator()):  # type: ignore[misc]
    """``[opentelemetry_configurator] leanllm``: the SDK setup with leanllm's sampler and processor in front."""

    front: LeanLLMSpanProcessor | None = None

    def _configure(self, **kwargs: Any) -> None:
        config = LeanLLMConfig.from_env()
        drops = DropCounter()
        front, _ = build_processor(config, drops, ())
        LeanLLMConfigurator.front = active.front = front

        def behind_front(span_exporter: SpanExporter, *args: Any, **kw: Any) -> SpanProcessor:
            batch = LeanLLMBatchSpanProcessor(front.wrap_exporter(span_exporter), config, drops=drops)
            front.add_span_processor(batch)
            if isinstance(span_exporter, LeanLLMSpanExporter):  # the process's own store: unrouted calls only
                router_of(front).mark_local(batch)
            return _Placeholder()

        otel_compat.initialize_components(
            **kwargs,
            sampler=LeanLLMSampler(default_sampler()),
            span_processors=[front],
            export_span_processor=behind_front,
        )
