"""LiteLLM proxy integration: one line in the proxy's ``config.yaml``.

.. code-block:: yaml

    litellm_settings:
      callbacks: ["leanllm_otel.proxy.proxy_handler_instance"]
      turn_off_message_logging: true        # honoured: no content is captured, whatever LEANLLM_CAPTURE_CONTENT says

The proxy imports this module while it reads its configuration. The import calls :func:`ensure_configured`, which
runs :func:`leanllm_otel.pipeline.configure` from the environment (``LEANLLM_DATABASE_URL`` or ``LEANLLM_API_KEY``,
``OTEL_EXPORTER_OTLP_*``, ``LEANLLM_SAMPLING_RATE``, ...), so every LiteLLM call the proxy makes becomes one span,
sampled and redacted like in any application. A proxy already started under ``opentelemetry-instrument`` is left
as it is (the instrumentation is not installed twice).

What the proxy adds to a call never reaches a span: the instrumentation reads only whitelisted request parameters,
so the virtual key, its hash (``user_api_key``, ``user_api_key_hash``), the ``Authorization`` header and the
proxy's request metadata are never recorded.

``turn_off_message_logging`` (a ``litellm_settings`` key, applied by the proxy after or before this import, so it
is read per request in :meth:`LeanLLMProxyHandler.async_pre_call_hook`) puts every call in ``metadata`` redaction
mode: sizes and counts only, no prompt or completion text in any exporter.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from leanllm_otel.context import LeanLLMContext, current_context, set_global_context
from leanllm_otel.instrumentation import litellm_compat
from leanllm_otel.instrumentation.instrumentor import LeanLLMInstrumentor
from leanllm_otel.pipeline import Pipeline, configure
from leanllm_otel.redaction_mode import RedactionMode

__all__ = ["LeanLLMProxyHandler", "ensure_configured", "message_logging_off", "proxy_handler_instance"]

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_pipeline: Pipeline | None = None
_configured = False
_saved_global: LeanLLMContext | None = None
_switch_applied = False


def ensure_configured() -> Pipeline | None:
    """Configure leanllm-otel from the environment once per process; None if something else already did.

    A ``ConfigError`` (an invalid ``LEANLLM_*`` value) propagates, so a misconfigured proxy fails at start
    instead of running without telemetry.
    """
    global _pipeline, _configured
    with _lock:
        if _configured:
            return _pipeline
        _configured = True
        if LeanLLMInstrumentor().is_instrumented_by_opentelemetry:
            logger.debug("leanllm-otel: LiteLLM is already instrumented (opentelemetry-instrument?); not configuring")
            return None
        _pipeline = configure()
        return _pipeline


def message_logging_off() -> bool:
    """Whether LiteLLM's ``turn_off_message_logging`` is on in this process."""
    return litellm_compat.message_logging_off()


def apply_message_logging_switch() -> bool:
    """Make the process-wide context follow ``turn_off_message_logging``; return whether content is off.

    On: calls default to ``metadata`` redaction (no content). Off again: the previous global context comes back.
    """
    global _saved_global, _switch_applied
    off = message_logging_off()
    with _lock:
        if off == _switch_applied:
            return off
        if off:
            _saved_global = current_context()
            set_global_context(LeanLLMContext(redaction_mode=RedactionMode.METADATA).merged_over(_saved_global))
        else:
            set_global_context(_saved_global)
            _saved_global = None
        _switch_applied = off
    return off


class LeanLLMProxyHandler(litellm_compat.custom_logger_class()):  # type: ignore[misc]
    """The proxy callback: configures leanllm-otel and applies the proxy's message-logging switch per request.

    It records nothing itself; the spans come from the instrumented LiteLLM calls the proxy makes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pipeline = ensure_configured()
        apply_message_logging_switch()

    async def async_pre_call_hook(self, *args: Any, **kwargs: Any) -> None:
        # LiteLLM passes (user_api_key_dict, cache, data, call_type) by keyword; any signature is accepted so a
        # renamed argument cannot break the proxy. Returning None leaves the request unchanged.
        apply_message_logging_switch()
        return None


proxy_handler_instance = LeanLLMProxyHandler()
"""What ``callbacks: ["leanllm_otel.proxy.proxy_handler_instance"]`` names."""
