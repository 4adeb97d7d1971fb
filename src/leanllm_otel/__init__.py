"""leanllm-otel: every LiteLLM call as one OpenTelemetry span, sampled and redacted before any exporter sees it.

The public names below load on first use (PEP 562), so importing the package, or one of its light modules (the
``opentelemetry_instrumentor`` entry point loads only the instrumentor), does not import the client, the pipeline
or the SQL store.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from leanllm_otel.version import __version__

if TYPE_CHECKING:
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

_HOMES = {
    "leanllm_otel.client": ("LeanLLM", "chat", "completion", "init", "shutdown"),
    "leanllm_otel.config": ("ConfigError", "LeanLLMConfig"),
    "leanllm_otel.context": (
        "CallOptions",
        "LeanLLMContext",
        "current_context",
        "set_global_context",
        "trace",
        "use_call_options",
        "use_context",
    ),
    "leanllm_otel.event": ("LLMEvent",),
    "leanllm_otel.feedback": ("score",),
    "leanllm_otel.guardrails.errors": ("LeanLLMBudgetExceeded", "LeanLLMGuardrailError", "LeanLLMPolicyViolation"),
    "leanllm_otel.instrumentation.instrumentor": ("LeanLLMInstrumentor",),
    "leanllm_otel.pipeline": ("Pipeline", "configure"),
    "leanllm_otel.processing.processor": ("LeanLLMSpanProcessor",),
    "leanllm_otel.processing.sampling": ("LeanLLMSampler",),
    "leanllm_otel.redaction_mode": ("RedactionMode",),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}

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


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'leanllm_otel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
