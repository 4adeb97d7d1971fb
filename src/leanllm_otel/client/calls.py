"""One call path for every client method, sync and async: per-call options, hooks, and the end-of-call report.

A client call is a LiteLLM call made with per-call options (``use_call_options``): the instrumentor's span *is* the
event. ``CallPath.begin`` prepares the call and returns a ``CallScope``; the sync and async methods differ only in
whether they ``await`` LiteLLM inside it.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any

from leanllm_otel.client.errors import ClientClosedError
from leanllm_otel.client.events import Entry
from leanllm_otel.client.kept import KeptSpans, decision_without_processor
from leanllm_otel.client.shared import ConfigLevel
from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.context import (
    CallOptions,
    LeanLLMContext,
    chain_parent,
    chain_set,
    current_context,
    use_call_options,
)
from leanllm_otel.debug import print_summary
from leanllm_otel.hooks import Hooks, build_snapshot
from leanllm_otel.instrumentation.call_context import new_event_id
from leanllm_otel.instrumentation.streams import StreamProxy
from leanllm_otel.processing import routing
from leanllm_otel.processing.rendering import Renderer
from leanllm_otel.processing.sampling import decide
from leanllm_otel.redaction_mode import RedactionMode

if TYPE_CHECKING:
    from leanllm_otel.client.routes import ClientSinks
    from leanllm_otel.instrumentation.invocation import Invocation
    from leanllm_otel.instrumentation.telemetry import Telemetry

logger = logging.getLogger(__name__)

_NOT_LOGGED = CallOptions(log=False)


@dataclass(frozen=True, slots=True)
class CallControl:
    """The per-call keyword arguments every client method takes (above LiteLLM's own)."""

    labels: Mapping[str, str] | None = None
    request_id: str | None = None
    correlation_id: str | None = None
    parent_request_id: str | None = None
    context: LeanLLMContext | None = None
    log: bool = True
    sample: float | None = None
    redaction_mode: RedactionMode | str | None = None


@dataclass(eq=False)
class PendingCall:
    """A logged call in flight; ``options`` is the very object set for it, so its end finds exactly this call."""

    snapshot: dict[str, Any] | None
    options: CallOptions


class CallScope:
    """Sets the call's options for the LiteLLM call made inside it, and settles the call when LiteLLM is done."""

    __slots__ = ("_call", "_client", "_options", "_token")

    def __init__(self, client: CallPath, options: CallOptions, call: PendingCall | None) -> None:
        self._client = client
        self._options = options
        self._call = call
        self._token: Any = None

    def __enter__(self) -> CallScope:
        self._token = use_call_options(self._options)
        self._token.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._token.__exit__(exc_type, exc, tb)
        if exc is not None and self._call is not None:
            self._client._settle(self._options.request_id or "", self._call, None, exc)

    def returned(self, result: Any) -> Any:
        """LiteLLM returned ``result``: settle the call and hand the result back."""
        if self._call is not None:
            self._client._settle(self._options.request_id or "", self._call, result, None)
        return result


class CallPath:
    """The call path of ``LeanLLM`` (a mixin: the facade owns the state declared here)."""

    config: LeanLLMConfig
    hooks: Hooks
    _api_key: str | None
    _lock: threading.RLock
    _pending: dict[str, list[PendingCall]]
    _ring: collections.deque[Entry] | None
    _closed: bool
    _level: ConfigLevel
    _renderer: Renderer | None
    _sinks: ClientSinks | None
    _kept: KeptSpans

    def _attach(self) -> Telemetry:  # pragma: no cover - the facade's
        raise NotImplementedError

    # --- per-call options ---------------------------------------------------------------------------------------
    def _options(self, control: CallControl) -> CallOptions:
        sample, context, parent_request_id = control.sample, control.context, control.parent_request_id
        mode = RedactionMode.parse(control.redaction_mode) if control.redaction_mode is not None else None
        level = self._level
        if level.applies:
            ambient = current_context()
            if context is not None:
                ambient = context.merged_over(ambient)
            if sample is None and level.sample is not None and (ambient is None or ambient.sample is None):
                sample = level.sample
            ambient_mode = ambient.redaction_mode if ambient is not None else None
            if mode is None and level.redaction_mode is not None and ambient_mode is None:
                mode = level.redaction_mode
            if level.environment and (ambient is None or ambient.environment is None):
                context = replace(context or LeanLLMContext(), environment=level.environment)
            if level.chain and parent_request_id is None and (ambient is None or ambient.parent_request_id is None):
                parent_request_id = chain_parent()
        return CallOptions(
            labels=dict(control.labels) if control.labels else None,
            request_id=control.request_id or new_event_id(),
            correlation_id=control.correlation_id,
            parent_request_id=parent_request_id,
            context=context,
            log=True,
            sample=sample,
            redaction_mode=mode,
        )

    @staticmethod
    def _logging_enabled(control: CallControl) -> bool:
        if not control.log:
            return False
        ambient = current_context()
        if control.context is not None:
            ambient = control.context.merged_over(ambient)
        return not (ambient is not None and ambient.log is False)

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("this LeanLLM client is closed")

    # --- the call path ------------------------------------------------------------------------------------------
    def _begin(
        self,
        function_name: str,
        operation: str,
        model: str,
        kwargs: dict[str, Any],
        content: dict[str, Any],
        control: CallControl,
    ) -> tuple[Callable[..., Any], dict[str, Any], CallScope]:
        """LiteLLM's function, its keyword arguments, and the scope to call it in."""
        import litellm

        function: Callable[..., Any] = getattr(litellm, function_name)
        call_kwargs = {**content, **kwargs}
        if self._api_key is not None and "api_key" not in call_kwargs:
            call_kwargs["api_key"] = self._api_key
        if not self._logging_enabled(control):
            self._check_open()
            return function, call_kwargs, CallScope(self, _NOT_LOGGED, None)
        self._attach()
        options = self._options(control)
        assert options.request_id is not None
        snapshot = None
        if self.hooks.needs_snapshot:
            snapshot = build_snapshot(
                model=model,
                request_id=options.request_id,
                labels=control.labels,
                correlation_id=control.correlation_id,
                parent_request_id=options.parent_request_id,
                operation=operation,
                kwargs=kwargs,
                **content,
            )
        call = PendingCall(snapshot, options)
        with self._lock:
            self._pending.setdefault(options.request_id, []).append(call)
        if self._sinks is not None:
            routing.bind(options.request_id, self._sinks.route)
        self.hooks.fire_pre_call(snapshot)
        return function, call_kwargs, CallScope(self, options, call)

    def _invoke(
        self,
        function_name: str,
        operation: str,
        model: str,
        kwargs: dict[str, Any],
        content: dict[str, Any],
        control: CallControl,
    ) -> Any:
        function, call_kwargs, scope = self._begin(function_name, operation, model, kwargs, content, control)
        with scope:
            return scope.returned(function(model=model, **call_kwargs))

    async def _ainvoke(
        self,
        function_name: str,
        operation: str,
        model: str,
        kwargs: dict[str, Any],
        content: dict[str, Any],
        control: CallControl,
    ) -> Any:
        function, call_kwargs, scope = self._begin(function_name, operation, model, kwargs, content, control)
        with scope:
            return scope.returned(await function(model=model, **call_kwargs))

    def _settle(self, request_id: str, call: PendingCall, result: Any, exc: BaseException | None) -> None:
        """After LiteLLM returned or raised: settle a call whose span never reported (or will report later)."""
        if exc is None and isinstance(result, StreamProxy):
            return  # the stream's span ends (and reports) when the stream ends
        if not self._take(request_id, call):
            return
        # No span reported this call (LiteLLM reached from inside another traced call, or instrumentation off).
        if exc is not None:
            self.hooks.fire_error(exc, call.snapshot)

    def _take(self, request_id: str, call: PendingCall) -> bool:
        """Remove ``call`` from the calls in flight; False when it was not there (already settled)."""
        with self._lock:
            calls = self._pending.get(request_id)
            if not calls or call not in calls:
                return False
            calls.remove(call)
            if not calls:
                del self._pending[request_id]
        if self._sinks is not None:
            routing.unbind(request_id)
        return True

    def _call_of(self, invocation: Invocation) -> PendingCall | None:
        """This client's call that ``invocation`` is (matched by its options object, never by request id alone:
        another client may use the same request id at the same time), taken off the calls in flight."""
        options = invocation.options
        if options is None:
            return None
        with self._lock:
            calls = self._pending.get(invocation.event_id)
            call = next((item for item in calls if item.options is options), None) if calls else None
        if call is None or not self._take(invocation.event_id, call):
            return None
        return call

    def _is_pending(self, request_id: object) -> bool:
        return request_id in self._pending

    # --- end of call (caller's thread, from the instrumentor) -----------------------------------------------------
    def _on_end(self, invocation: Invocation, span: Any, exc: BaseException | None) -> None:
        reported = self._kept.take(span)  # taken even when the call is not ours: nothing stays behind
        call = self._call_of(invocation)
        if call is None:
            return  # not one of this client's calls
        if self._level.chain and decide(failed=exc is not None, drawn=invocation.sampled).kept:
            chain_set(invocation.event_id)  # the invocation's own chain rule (its draw), for this client's config
        if reported is None and self._kept.processor is None:
            decision = decision_without_processor(invocation.telemetry, span)
            reported = (span, decision) if decision is not None and decision.kept else None
        if reported is None:
            logger.debug("leanllm-otel: event %s sampled out", invocation.event_id)
            return
        entry = Entry(reported[0], invocation.record, self._renderer)
        if self._ring is not None:
            with self._lock:
                self._ring.append(entry)
        if exc is not None:
            self.hooks.fire_error(exc, call.snapshot)
        elif self.hooks.post_call is not None:
            self.hooks.fire_post_call(entry.metadata_event())
        if self.config.debug:
            print_summary(entry.metadata_event())
