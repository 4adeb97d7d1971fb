"""leanllm-otel: every LiteLLM call as one OpenTelemetry span, sampled and redacted before any exporter sees it."""

from leanllm_otel.client import LeanLLM, chat, completion, init, shutdown
from leanllm_otel.config import ConfigError, LeanLLMConfig
from leanllm_otel.context import (
    CallOptions,
    LeanLLMContext,
    current_context,
    set_global_context,
    trace,
    use_call_options,
    use_context,
)
from leanllm_otel.event import LLMEvent
from leanllm_otel.feedback import score
from leanllm_otel.guardrails.errors import LeanLLMBudgetExceeded, LeanLLMGuardrailError, LeanLLMPolicyViolation
from leanllm_otel.instrumentation.instrumentor import LeanLLMInstrumentor
from leanllm_otel.pipeline import Pipeline, configure
from leanllm_otel.processing.processor import LeanLLMSpanProcessor
from leanllm_otel.processing.sampling import LeanLLMSampler
from leanllm_otel.redaction_mode import RedactionMode
from leanllm_otel.version import __version__

__all__ = [
    "CallOptions",
    "ConfigError",
    "LLMEvent",
    "LeanLLM",
    "LeanLLMBudgetExceeded",
    "LeanLLMConfig",
    "LeanLLMContext",
    "LeanLLMGuardrailError",
    "LeanLLMInstrumentor",
    "LeanLLMPolicyViolation",
    "LeanLLMSampler",
    "LeanLLMSpanProcessor",
    "Pipeline",
    "RedactionMode",
    "__version__",
    "chat",
    "completion",
    "configure",
    "current_context",
    "init",
    "score",
    "set_global_context",
    "shutdown",
    "trace",
    "use_call_options",
    "use_context",
]
