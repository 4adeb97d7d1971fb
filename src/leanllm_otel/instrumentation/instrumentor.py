"""``LeanLLMInstrumentor``: patches LiteLLM's entry points so each logical call is one span.

Two layers, so that a call is traced however the application reached the function:

1. the module attributes (``litellm.completion``, ``litellm.Router.acompletion``, ``litellm.anthropic.messages
   .create``, ...) are wrapped with ``wrapt``, outside LiteLLM's own ``@client`` decorator, so the span covers
   LiteLLM's retries and sees the cost LiteLLM computes;
2. the ``original_function`` closure cell inside each ``@client`` wrapper is pointed at a traced function, so a
   reference taken with ``from litellm import completion`` *before* ``instrument()`` is traced too. When layer 1
   is active the nesting guard makes layer 2 a pass-through.

Entry points the installed LiteLLM lacks are skipped; what LiteLLM's internals look like is asked of
``litellm_compat`` only (which also warns once when the installed LiteLLM is outside the tested range).
``uninstrument()`` restores both layers; a wrapper someone still holds becomes a pass-through.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from types import CellType, ModuleType
from typing import Any

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap

from leanllm_otel import semconv as sc
from leanllm_otel.instrumentation import litellm_compat
from leanllm_otel.instrumentation.telemetry import Telemetry
from leanllm_otel.instrumentation.wrappers import OperationSpec, TracingState, make_function, make_wrapper
from leanllm_otel.package import _instruments
from leanllm_otel.settings import TelemetrySettings

logger = logging.getLogger(__name__)

# Entry points LiteLLM's module and ``litellm.Router`` both offer (each is skipped where the installed LiteLLM
# lacks it). Semconv has no operation name for images, audio or rerank: ``generate_content`` (multimodal content
# generation) with ``gen_ai.output.type`` for the first two, ``retrieval`` (a query ranked against documents) for
# rerank.
ROUTER_METHODS: tuple[OperationSpec, ...] = (
    OperationSpec("completion", sc.OP_CHAT, False),
    OperationSpec("acompletion", sc.OP_CHAT, True),
    OperationSpec("text_completion", sc.OP_TEXT_COMPLETION, False, api="text_completion"),
    OperationSpec("atext_completion", sc.OP_TEXT_COMPLETION, True, api="text_completion"),
    OperationSpec("embedding", sc.OP_EMBEDDINGS, False, api="embedding"),
    OperationSpec("aembedding", sc.OP_EMBEDDINGS, True, api="embedding"),
    OperationSpec("responses", sc.OP_CHAT, False, api="responses"),
    OperationSpec("aresponses", sc.OP_CHAT, True, api="responses"),
    OperationSpec(
        "image_generation",
        sc.OP_GENERATE_CONTENT,
        False,
        api="image_generation",
        output_type=sc.OUTPUT_TYPE_IMAGE,
        model_arg=None,
    ),
    OperationSpec(
        "aimage_generation",
        sc.OP_GENERATE_CONTENT,
        True,
        api="image_generation",
        output_type=sc.OUTPUT_TYPE_IMAGE,
        model_arg=None,
    ),
    OperationSpec("transcription", sc.OP_GENERATE_CONTENT, False, api="transcription", output_type=sc.OUTPUT_TYPE_TEXT),
    OperationSpec("atranscription", sc.OP_GENERATE_CONTENT, True, api="transcription", output_type=sc.OUTPUT_TYPE_TEXT),
    OperationSpec("speech", sc.OP_GENERATE_CONTENT, False, api="speech", output_type=sc.OUTPUT_TYPE_SPEECH),
    OperationSpec("aspeech", sc.OP_GENERATE_CONTENT, True, api="speech", output_type=sc.OUTPUT_TYPE_SPEECH),
    OperationSpec("rerank", sc.OP_RETRIEVAL, False, api="rerank"),
    OperationSpec("arerank", sc.OP_RETRIEVAL, True, api="rerank"),
)

MODULE_FUNCTIONS: tuple[OperationSpec, ...] = (
    *ROUTER_METHODS,
    OperationSpec("completion_with_retries", sc.OP_CHAT, False),
    OperationSpec("acompletion_with_retries", sc.OP_CHAT, True),
)

# ``litellm.anthropic.messages``: the Anthropic-style interface (``create(max_tokens, messages, model, ...)``).
ANTHROPIC_MESSAGES: tuple[OperationSpec, ...] = (
    OperationSpec("create", sc.OP_CHAT, False, api="anthropic_messages", model_arg=2),
    OperationSpec("acreate", sc.OP_CHAT, True, api="anthropic_messages", model_arg=2),
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

        litellm_compat.check_version()
        for spec in MODULE_FUNCTIONS:
            self._patch(litellm, spec, client_cell=True)
        router = getattr(litellm, "Router", None)
        if router is not None:
            for spec in ROUTER_METHODS:
                self._patch(router, spec)
        messages = litellm_compat.anthropic_messages()
        if messages is not None:
            for spec in ANTHROPIC_MESSAGES:
                self._patch(messages, spec)

    def _patch(self, owner: type | ModuleType, spec: OperationSpec, client_cell: bool = False) -> None:
        current = getattr(owner, spec.attribute, None)
        if current is None:
            return
        if client_cell:
            self._patch_client_cell(current, spec)
        wrapt.wrap_function_wrapper(owner, spec.attribute, make_wrapper(self._state, spec))
        self._patched_attributes.append((owner, spec.attribute))

    def _patch_client_cell(self, function: Callable[..., Any], spec: OperationSpec) -> None:
        """Point LiteLLM's ``@client`` wrapper at a traced original (covers references taken before us)."""
        cell = litellm_compat.client_cell(function)
        if cell is None:
            return
        original = cell.cell_contents
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
