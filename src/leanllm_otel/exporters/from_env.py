"""``LeanLLMSpanExporter``: the ``leanllm`` traces exporter of ``OTEL_TRACES_EXPORTER``.

Constructible with no arguments (``opentelemetry-instrument`` does that); ``LEANLLM_DATABASE_URL`` selects the SQL
store and ``LEANLLM_API_KEY`` the LeanLLM service. It delegates everything to that exporter.

Behind leanllm's configurator (the default, or ``OTEL_PYTHON_CONFIGURATOR=leanllm``) it receives spans that
``LeanLLMSpanProcessor`` already sampled and rendered. When another configurator built the SDK (e.g.
``opentelemetry-distro``'s, which wins when both are installed and none is named), it is fed by a plain batch
processor: it then still drops sampled-out LLM successes itself (it follows the decision recorded on the span, or
recomputes it from trace id and rate, so applying it twice changes nothing), and warns that content capture and
error rescue need ours.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from leanllm_otel.active import leanllm_processor_in_front
from leanllm_otel.config import ConfigError, LeanLLMConfig
from leanllm_otel.exporters.persistence import persistence_exporter
from leanllm_otel.exporters.wrapping import WrappingExporter
from leanllm_otel.processing.sampling import span_decision

logger = logging.getLogger(__name__)


def _behind_leanllm_processor() -> bool:
    return leanllm_processor_in_front()


def _kept(span: ReadableSpan, default_rate: float) -> bool:
    decision = span_decision(span, default_rate)
    return decision is None or decision.kept


class LeanLLMSpanExporter(WrappingExporter):
    """The SQL or service exporter chosen by ``LEANLLM_*``."""

    def __init__(self, config: LeanLLMConfig | None = None) -> None:
        self.config = config if config is not None else LeanLLMConfig.from_env()
        inner = persistence_exporter(self.config) if self.config.enable_persistence else None
        if inner is None:
            raise ConfigError(
                "OTEL_TRACES_EXPORTER=leanllm needs LEANLLM_DATABASE_URL (SQL store) or LEANLLM_API_KEY "
                "(LeanLLM service), and LEANLLM_ENABLE_PERSISTENCE not false"
            )
        super().__init__(inner)
        if not _behind_leanllm_processor():
            logger.warning(
                "leanllm-otel: the `leanllm` traces exporter runs without leanllm's span processor (another "
                "OpenTelemetry configurator, e.g. opentelemetry-distro's, set up the SDK): sampling is applied "
                "here, but no content is captured and OTLP exporters are not sampled. Set "
                "OTEL_PYTHON_CONFIGURATOR=leanllm."
            )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        rate = self.config.sampling_rate
        kept = [span for span in spans if _kept(span, rate)]
        if not kept:
            return SpanExportResult.SUCCESS
        return self.inner.export(kept)
