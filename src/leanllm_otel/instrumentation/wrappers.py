"""Sync and async call wrappers around LiteLLM entry points, with the nesting guard.

A LiteLLM call re-enters LiteLLM (``acompletion`` runs ``completion`` in an executor, ``Router`` and
``completion_with_retries`` call ``completion`` per attempt, fallbacks call other models). The guard is a context
variable set for the outermost traced call: anything traced inside it passes straight through, so one logical call is
one span, and retries or fallbacks happen inside it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as context_api
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import set_span_in_context

from leanllm_otel._internal import log_internal_error
from leanllm_otel.instrumentation import litellm_compat
from leanllm_otel.instrumentation.gate import Refused
from leanllm_otel.instrumentation.invocation import Invocation, Skip
from leanllm_otel.instrumentation.streams import StreamProxy
from leanllm_otel.instrumentation.telemetry import Telemetry

_IN_LLM_CALL: ContextVar[bool] = ContextVar("leanllm_in_llm_call", default=False)


@dataclass(frozen=True, slots=True)
class OperationSpec:
    """One wrapped entry point: where it lives and which ``gen_ai.operation.name`` it performs.

    ``api`` names the request / response shape (``chat``, ``responses``, ``image_generation``, ...) that the content
    rendering reads; ``output_type`` is ``gen_ai.output.type`` when the operation fixes it; ``model_arg`` is the
    position of ``model`` when passed positionally (None: keyword only).
    """

    attribute: str
    operation: str
    is_async: bool
    api: str = "chat"
    output_type: str | None = None
    model_arg: int | None = 0


class TracingState:
    """Shared by every wrapper the instrumentor installs; ``telemetry`` None means pass-through (uninstrumented)."""

    def __init__(self) -> None:
        self.telemetry: Telemetry | None = None


def _begin(
    state: TracingState, spec: OperationSpec, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Invocation | None:
    telemetry = state.telemetry
    if telemetry is None or _IN_LLM_CALL.get() or not is_instrumentation_enabled():
        return None
    try:
        return Invocation(telemetry, spec, args, kwargs)
    except Skip:
        return None
    except Refused as refused:
        raise refused.error from None  # the call gate refused the call (its span is already ended)
    except Exception:
        log_internal_error("starting an LLM span")
        return None


def _finish(invocation: Invocation, result: Any) -> Any:
    if invocation.stream and litellm_compat.is_stream(result):
        try:
            return StreamProxy(result, invocation)
        except Exception:
            log_internal_error("wrapping a stream")
            invocation.succeed(None)
            return result
    invocation.succeed(result)
    return result


class _InsideCall:
    """While LiteLLM runs: the span is current (HTTP child spans nest) and the nesting guard is set. Both are undone
    before the invocation ends, so ending happens in the caller's own context; an exception ends it as an error."""

    __slots__ = ("_guard", "_invocation", "_token")

    def __init__(self, invocation: Invocation) -> None:
        self._invocation = invocation

    def __enter__(self) -> None:
        self._guard = _IN_LLM_CALL.set(True)
        self._token = context_api.attach(set_span_in_context(self._invocation.span))

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        context_api.detach(self._token)
        _IN_LLM_CALL.reset(self._guard)
        if exc is not None:
            self._invocation.fail(exc)


def make_wrapper(state: TracingState, spec: OperationSpec) -> Callable[..., Any]:
    """A ``wrapt``-style wrapper ``(wrapped, instance, args, kwargs)`` for ``spec``."""
    if spec.is_async:

        async def async_wrapper(
            wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            invocation = _begin(state, spec, args, kwargs)
            if invocation is None:
                return await wrapped(*args, **kwargs)
            with _InsideCall(invocation):
                result = await wrapped(*args, **kwargs)
                if inspect.isawaitable(result):  # some LiteLLM paths return a coroutine from a coroutine
                    result = await result
            return _finish(invocation, result)

        return async_wrapper

    def sync_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        invocation = _begin(state, spec, args, kwargs)
        if invocation is None:
            return wrapped(*args, **kwargs)
        with _InsideCall(invocation):
            result = wrapped(*args, **kwargs)
        if inspect.iscoroutine(result):
            # Called with acompletion=True or similar: the work happens when the caller awaits.
            return _await_then_finish(invocation, result)
        return _finish(invocation, result)

    return sync_wrapper


async def _await_then_finish(invocation: Invocation, coroutine: Any) -> Any:
    with _InsideCall(invocation):
        result = await coroutine
    return _finish(invocation, result)


def make_function(state: TracingState, spec: OperationSpec, original: Callable[..., Any]) -> Callable[..., Any]:
    """A plain function calling ``original`` through the wrapper (for patching closure cells)."""
    wrapper = make_wrapper(state, spec)
    if spec.is_async:

        async def traced_async(*args: Any, **kwargs: Any) -> Any:
            return await wrapper(original, None, args, kwargs)

        traced_async.__wrapped__ = original  # type: ignore[attr-defined]
        return traced_async

    def traced(*args: Any, **kwargs: Any) -> Any:
        return wrapper(original, None, args, kwargs)

    traced.__wrapped__ = original  # type: ignore[attr-defined]
    return traced
