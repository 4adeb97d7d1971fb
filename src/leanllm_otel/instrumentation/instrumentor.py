"""``LeanLLMInstrumentor``: patches LiteLLM's entry points so each logical call is one span.

Two layers, so that a call is traced however the application reached the function:

1. the module attributes (``litellm.completion``, ``litellm.Router.acompletion``, ...) are wrapped with ``wrapt``,
   outside LiteLLM's own ``@client`` decorator, so the span covers LiteLLM's retries and sees the cost LiteLLM
   computes;
2. the ``original_function`` closure cell inside each ``@client`` wrapper is pointed at a traced function, so a
   reference taken with ``from litellm import completion`` *before* ``instrument()`` is traced too. When layer 1
   is active the nesting guard makes layer 2 a pass-through.

``uninstrument()`` restores both layers; a wrapper someone still holds becomes a pass-through.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from types import CellType
from typing import Any

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap

from leanllm_otel import semconv as sc
from leanllm_otel.instrumentation.telemetry import Telemetry
from leanllm_otel.instrumentation.wrappers import OperationSpec, TracingState, make_function, make_wrapper
from leanllm_otel.package import _instruments
from leanllm_otel.settings import TelemetrySettings

logger = logging.getLogger(__name__)

# Entry points LiteLLM's module and ``litellm.Router`` both offer.
ROUTER_METHODS: tuple[OperationSpec, ...] = (
    OperationSpec("completion", sc.OP_CHAT, False),
    OperationSpec("acompletion", sc.OP_CHAT, True),
    OperationSpec("text_completion", sc.OP_TEXT_COMPLETION, False),
    OperationSpec("atext_completion", sc.OP_TEXT_COMPLETION, True),
    OperationSpec("embedding", sc.OP_EMBEDDINGS, False),
    OperationSpec("aembedding", sc.OP_EMBEDDINGS, True),
    OperationSpec("responses", sc.OP_CHAT, False),
    OperationSpec("aresponses", sc.OP_CHAT, True),
)

MODULE_FUNCTIONS: tuple[OperationSpec, ...] = (
    *ROUTER_METHODS,
    OperationSpec("completion_with_retries", sc.OP_CHAT, False),
    OperationSpec("acompletion_with_retries", sc.OP_CHAT, True),
)


class LeanLLMInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instrument LiteLLM: ``LeanLLMInstrumentor().instrument(tracer_provider=..., meter_provider=..., config=...)``.

    ``config`` is a ``LeanLLMConfig`` (default: ``LeanLLMConfig.from_env()``); it supplies the sampling rate,
    environment, content capture and redaction defaults that calls start with.
    """

    def __init__(self) -> None:
        # BaseInstrumentor is a singleton whose __init__ runs on every ``LeanLLMInstrumentor()``: resetting the
        # patch lists then would make a later ``LeanLLMInstrumentor().uninstrument()`` restore nothing.
        if getattr(self, "_patched_attributes", None) is not None:
            return
        super().__init__()
        self._state = TracingState()
        self._patched_attributes: list[tuple[Any, str]] = []
        self._patched_cells: list[tuple[CellType, Any]] = []

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    @property
    def telemetry(self) -> Telemetry | None:
        """The live telemetry object while instrumented (the client and pipeline attach listeners to it)."""
        return self._state.telemetry

    def _instrument(self, **kwargs: Any) -> None:
        import litellm

        settings = kwargs.get("settings")
        if not isinstance(settings, TelemetrySettings):
            settings = TelemetrySettings.from_config(kwargs.get("config"))
        self._state.telemetry = Telemetry(settings, kwargs.get("tracer_provider"), kwargs.get("meter_provider"))

        for spec in MODULE_FUNCTIONS:
            current = getattr(litellm, spec.attribute, None)
            if current is None:
                continue
            self._patch_client_cell(current, spec)
            wrapt.wrap_function_wrapper(litellm, spec.attribute, make_wrapper(self._state, spec))
            self._patched_attributes.append((litellm, spec.attribute))
        router = getattr(litellm, "Router", None)
        if router is not None:
            for spec in ROUTER_METHODS:
                if getattr(router, spec.attribute, None) is None:
                    continue
                wrapt.wrap_function_wrapper(router, spec.attribute, make_wrapper(self._state, spec))
                self._patched_attributes.append((router, spec.attribute))

    def _patch_client_cell(self, function: Callable[..., Any], spec: OperationSpec) -> None:
        """Point LiteLLM's ``@client`` wrapper at a traced original (covers references taken before us)."""
        code = getattr(function, "__code__", None)
        closure = getattr(function, "__closure__", None)
        if code is None or not closure or "original_function" not in code.co_freevars:
            return
        cell = closure[code.co_freevars.index("original_function")]
        original = cell.cell_contents
        if not callable(original):
            return
        cell.cell_contents = make_function(self._state, spec, original)
        self._patched_cells.append((cell, original))

    def _uninstrument(self, **kwargs: Any) -> None:
        self._state.telemetry = None
        for owner, attribute in reversed(self._patched_attributes):
            unwrap(owner, attribute)
        self._patched_attributes.clear()
        for cell, original in reversed(self._patched_cells):
            cell.cell_contents = original
        self._patched_cells.clear()
        # Wrappers held elsewhere now see ``telemetry is None`` and pass through; give them a fresh state so a
        # later instrument() does not revive them.
        self._state = TracingState()
