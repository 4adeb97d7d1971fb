"""``LeanLLM``: the LeanLLM client API, built on the same spans, processor and exporters as everything else.

::

    from leanllm_otel import LeanLLM, LeanLLMConfig
    client = LeanLLM(api_key="sk-...", config=LeanLLMConfig(database_url="sqlite:///events.db"))
    response = client.chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hi."}],
                           labels={"feature": "demo"})
    client.last_event            # the LLMEvent of that call

A client call is a LiteLLM call made with per-call options (``use_call_options``): the instrumentor's span *is*
the event. The client adds hooks, the ``last_event`` ring buffer, debug summaries and the events API on top.

One pipeline per process
    LiteLLM is patched process-wide, so there is one instrumentation and one export pipeline per process. The first
    ``LeanLLM`` (when nothing instrumented LiteLLM yet) builds it with ``pipeline.configure(config)``; every later
    client shares it, and the last client to ``close()`` shuts it down. When the application set things up itself
    (``leanllm_otel.configure()``, ``LeanLLMInstrumentor().instrument()`` or ``opentelemetry-instrument``), clients
    attach to that and never shut it down. Exporters, queue and delivery settings come from whoever built the
    pipeline; per-call behaviour (``sampling_rate``, ``redaction_mode``/``capture_content``, ``environment``,
    ``auto_chain`` on) follows each client's own config, at config precedence (per call > context > config).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import ReadableSpan

from leanllm_otel import otel_compat
from leanllm_otel import pipeline as pipeline_module
from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.context import (
    CallOptions,
    LeanLLMContext,
    chain_parent,
    chain_set,
    current_context,
    use_call_options,
)
from leanllm_otel.debug import enable_debug_logging, print_summary
from leanllm_otel.event import LLMEvent, span_to_event
from leanllm_otel.hooks import (
    DroppedEventsHook,
    ErrorHook,
    Hooks,
    PostCallHook,
    PreCallHook,
    build_snapshot,
)
from leanllm_otel.instrumentation.instrumentor import LeanLLMInstrumentor
from leanllm_otel.instrumentation.streams import StreamProxy
from leanllm_otel.processing.processor import attach_record
from leanllm_otel.processing.record import CallRecord
from leanllm_otel.processing.rendering import Renderer
from leanllm_otel.processing.sampling import decide
from leanllm_otel.redaction_mode import RedactionMode
from leanllm_otel.settings import TelemetrySettings

if TYPE_CHECKING:
    from leanllm_otel.instrumentation.invocation import Invocation
    from leanllm_otel.instrumentation.telemetry import Telemetry
    from leanllm_otel.pipeline import Pipeline
    from leanllm_otel.store.queries import AsyncEventStore, EventStore

__all__ = [
    "ClientClosedError",
    "LeanLLM",
    "PersistenceUnavailableError",
    "chat",
    "completion",
    "get_client",
    "init",
    "shutdown",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")


class ClientClosedError(RuntimeError):
    """The client was closed; create a new one (or call ``leanllm_otel.init()`` again)."""


class PersistenceUnavailableError(RuntimeError):
    """The events API needs the SQL store: persistence is off, or events go to the remote LeanLLM service."""


# --- one pipeline per process ----------------------------------------------------------------------------------


def _current_pipeline() -> Pipeline | None:
    return pipeline_module.active_pipeline()


class _SharedPipeline:
    """The pipeline clients built, reference-counted so the last client to close shuts it down."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.pipeline: Pipeline | None = None
        self.users = 0

    def acquire(self, config: LeanLLMConfig) -> tuple[Pipeline | None, bool]:
        """(pipeline in force, whether this client holds a reference on the shared one)."""
        with self.lock:
            instrumentor = LeanLLMInstrumentor()
            if not instrumentor.is_instrumented_by_opentelemetry or instrumentor.telemetry is None:
                self.pipeline = pipeline_module.configure(config)
                self.users = 0
            current = _current_pipeline()
            if current is not None and current is self.pipeline:
                self.users += 1
                return current, True
            return current, False

    def release(self, pipeline: Pipeline | None) -> None:
        with self.lock:
            if pipeline is None or pipeline is not self.pipeline:
                return
            self.users -= 1
            if self.users <= 0:
                self.pipeline = None
                self.users = 0
                pipeline.shutdown()


_SHARED = _SharedPipeline()


@dataclass(frozen=True)
class _ConfigLevel:
    """This client's config values that differ from the shared pipeline's; applied at config precedence."""

    sample: float | None = None
    redaction_mode: RedactionMode | None = None
    environment: str | None = None
    chain: bool = False

    @classmethod
    def between(cls, mine: TelemetrySettings, live: TelemetrySettings) -> _ConfigLevel:
        my_mode = mine.redaction_mode(None)
        mode_differs = my_mode is not live.redaction_mode(None) or mine.capture_content != live.capture_content
        return cls(
            sample=mine.sampling_rate if mine.sampling_rate != live.sampling_rate else None,
            redaction_mode=my_mode if mode_differs else None,
            environment=mine.environment if mine.environment != live.environment else None,
            chain=mine.auto_chain and not live.auto_chain,
        )


# --- per-call bookkeeping ----------------------------------------------------------------------------------------


@dataclass
class _Call:
    snapshot: dict[str, Any] | None


class _Entry:
    """One kept event in the ring buffer: the ended span, rendered to an ``LLMEvent`` only when read."""

    __slots__ = ("_event", "_metadata_event", "_record", "_renderer", "_span")

    def __init__(self, span: ReadableSpan, record: CallRecord | None, renderer: Renderer | None) -> None:
        self._span = span
        self._record = record
        self._renderer = renderer
        self._event: LLMEvent | None = None
        self._metadata_event: LLMEvent | None = None

    def metadata_event(self) -> LLMEvent:
        """Everything the span carries (no content): cheap, used on the caller's thread."""
        if self._metadata_event is None:
            self._metadata_event = span_to_event(self._span)
        return self._metadata_event

    def event(self) -> LLMEvent:
        """The event as the stores receive it, content in the configured redaction form (rendered on first read)."""
        if self._event is None:
            if self._record is None or self._renderer is None:
                self._event = self.metadata_event()
            else:
                rendered = self._renderer.render(attach_record(self._span, self._record))
                self._event = span_to_event(rendered)
                self._record = None  # drop the references to messages and response once rendered
        return self._event


def _head_sampled(span: Any) -> bool:
    context = getattr(span, "context", None)
    return bool(context is not None and context.trace_flags.sampled)


# --- the client ---------------------------------------------------------------------------------------------------


class LeanLLM:
    """The LeanLLM client: ``chat`` / ``completion`` / ``embed`` (+ async) through LiteLLM, every call an event.

    ``api_key`` is the *provider* key, passed to LiteLLM on each call (a per-call ``api_key=`` wins). ``config``
    defaults to ``LeanLLMConfig.from_env()``. Hooks: see :mod:`leanllm_otel.hooks`. Use as a context manager, or
    call :meth:`close` (flushes, and shuts the pipeline down when this is the last client that built it).
    """

    def __init__(
        self,
        api_key: str | None = None,
        config: LeanLLMConfig | None = None,
        *,
        pre_call_hook: PreCallHook | None = None,
        post_call_hook: PostCallHook | None = None,
        error_hook: ErrorHook | None = None,
        on_dropped_events: DroppedEventsHook | None = None,
    ) -> None:
        self.config = config if config is not None else LeanLLMConfig.from_env()
        self._api_key = api_key
        self.hooks = Hooks(pre_call_hook, post_call_hook, error_hook, on_dropped_events)
        self._settings = TelemetrySettings.from_config(self.config)
        self._lock = threading.RLock()
        self._pending: dict[str, list[_Call]] = {}
        size = self.config.last_event_buffer
        self._ring: collections.deque[_Entry] | None = collections.deque(maxlen=size) if size > 0 else None
        self._closed = False
        self._listener = self._on_end  # one bound method, so remove_end_listener finds it
        self._telemetry: Telemetry | None = None
        self._pipeline: Pipeline | None = None
        self._holds_shared = False
        self._renderer: Renderer | None = None
        self._level = _ConfigLevel()
        self._store: EventStore | None = None
        self._async_migrated = False
        if self.config.debug:
            enable_debug_logging()
        self._attach()

    # --- wiring -------------------------------------------------------------------------------------------------
    def _attach(self) -> Telemetry:
        """Make sure LiteLLM is instrumented and this client listens to the live telemetry."""
        telemetry = LeanLLMInstrumentor().telemetry
        if telemetry is not None and telemetry is self._telemetry:
            return telemetry
        with self._lock:
            if self._closed:
                raise ClientClosedError("this LeanLLM client is closed")
            if self._telemetry is not None:
                self._telemetry.remove_end_listener(self._listener)
                self._telemetry = None
            if self._holds_shared:
                _SHARED.release(self._pipeline)
                self._holds_shared = False
            pipeline, holds = _SHARED.acquire(self.config)
            telemetry = LeanLLMInstrumentor().telemetry
            if telemetry is None:  # pragma: no cover - configure() always instruments
                raise RuntimeError("leanllm-otel: LiteLLM could not be instrumented")
            self._pipeline, self._holds_shared = pipeline, holds
            if pipeline is not None and self.hooks.dropped is not None:
                pipeline.drops.add_callback(self._forward_drop)
            hash_key = self.config.hash_key.get_secret_value().encode() if self.config.hash_key else None
            self._renderer = (
                pipeline.processor.renderer if pipeline is not None else Renderer(telemetry.settings, hash_key)
            )
            self._level = _ConfigLevel.between(self._settings, telemetry.settings)
            telemetry.add_end_listener(self._listener)
            self._telemetry = telemetry
            logger.debug("leanllm-otel client attached (shared pipeline: %s)", holds)
            return telemetry

    def _forward_drop(self, count: int, reason: str) -> None:
        if not self._closed:
            self.hooks.fire_dropped(count, reason)

    # --- per-call options ---------------------------------------------------------------------------------------
    def _options(
        self,
        labels: Mapping[str, str] | None,
        request_id: str | None,
        correlation_id: str | None,
        parent_request_id: str | None,
        context: LeanLLMContext | None,
        sample: float | None,
        redaction_mode: RedactionMode | str | None,
    ) -> CallOptions:
        mode = RedactionMode.parse(redaction_mode) if redaction_mode is not None else None
        level = self._level
        if level.sample is not None or level.redaction_mode is not None or level.environment or level.chain:
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
            labels=dict(labels) if labels else None,
            request_id=request_id or str(uuid.uuid4()),
            correlation_id=correlation_id,
            parent_request_id=parent_request_id,
            context=context,
            log=True,
            sample=sample,
            redaction_mode=mode,
        )

    @staticmethod
    def _logging_enabled(log: bool, context: LeanLLMContext | None) -> bool:
        if not log:
            return False
        ambient = current_context()
        if context is not None:
            ambient = context.merged_over(ambient)
        return not (ambient is not None and ambient.log is False)

    def _provider_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self._api_key is not None and "api_key" not in kwargs:
            kwargs["api_key"] = self._api_key
        return kwargs

    # --- the call path ------------------------------------------------------------------------------------------
    def _prepare(
        self,
        operation: str,
        model: str,
        call_kwargs: dict[str, Any],
        content: dict[str, Any],
        labels: Mapping[str, str] | None,
        request_id: str | None,
        correlation_id: str | None,
        parent_request_id: str | None,
        context: LeanLLMContext | None,
        sample: float | None,
        redaction_mode: RedactionMode | str | None,
    ) -> tuple[CallOptions, _Call]:
        self._attach()
        options = self._options(labels, request_id, correlation_id, parent_request_id, context, sample, redaction_mode)
        assert options.request_id is not None
        snapshot = None
        if self.hooks.needs_snapshot:
            snapshot = build_snapshot(
                model=model,
                request_id=options.request_id,
                labels=labels,
                correlation_id=correlation_id,
                parent_request_id=options.parent_request_id,
                operation=operation,
                kwargs=call_kwargs,
                **content,
            )
        call = _Call(snapshot)
        with self._lock:
            self._pending.setdefault(options.request_id, []).append(call)
        self.hooks.fire_pre_call(snapshot)
        return options, call

    def _settle(self, request_id: str, call: _Call, result: Any, exc: BaseException | None) -> None:
        """After LiteLLM returned or raised: settle a call whose span never reported (or will report later)."""
        if exc is None and isinstance(result, StreamProxy):
            return  # the stream's span ends (and reports) when the stream ends
        if not self._take(request_id, call):
            return
        # No span reported this call (LiteLLM reached from inside another traced call, or instrumentation off).
        if exc is not None:
            self.hooks.fire_error(exc, call.snapshot)

    def _take(self, request_id: str, call: _Call | None = None) -> _Call | None:
        with self._lock:
            calls = self._pending.get(request_id)
            if not calls:
                return None
            if call is None:
                taken = calls.pop(0)
            elif call in calls:
                calls.remove(call)
                taken = call
            else:
                return None
            if not calls:
                del self._pending[request_id]
            return taken

    def _invoke(
        self,
        function_name: str,
        operation: str,
        model: str,
        kwargs: dict[str, Any],
        content: dict[str, Any],
        control: dict[str, Any],
    ) -> Any:
        import litellm

        function: Callable[..., Any] = getattr(litellm, function_name)
        call_kwargs = self._provider_kwargs({**content, **kwargs})
        if not self._logging_enabled(control["log"], control["context"]):
            self._check_open()
            with use_call_options(CallOptions(log=False)):
                return function(model=model, **call_kwargs)
        options, call = self._prepare(operation, model, kwargs, content, **_prepare_args(control))
        assert options.request_id is not None
        try:
            with use_call_options(options):
                result = function(model=model, **call_kwargs)
        except BaseException as exc:
            self._settle(options.request_id, call, None, exc)
            raise
        self._settle(options.request_id, call, result, None)
        return result

    async def _ainvoke(
        self,
        function_name: str,
        operation: str,
        model: str,
        kwargs: dict[str, Any],
        content: dict[str, Any],
        control: dict[str, Any],
    ) -> Any:
        import litellm

        function: Callable[..., Any] = getattr(litellm, function_name)
        call_kwargs = self._provider_kwargs({**content, **kwargs})
        if not self._logging_enabled(control["log"], control["context"]):
            self._check_open()
            with use_call_options(CallOptions(log=False)):
                return await function(model=model, **call_kwargs)
        options, call = self._prepare(operation, model, kwargs, content, **_prepare_args(control))
        assert options.request_id is not None
        try:
            with use_call_options(options):
                result = await function(model=model, **call_kwargs)
        except BaseException as exc:
            self._settle(options.request_id, call, None, exc)
            raise
        self._settle(options.request_id, call, result, None)
        return result

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("this LeanLLM client is closed")

    # --- end of call (caller's thread, from the instrumentor) -----------------------------------------------------
    def _on_end(self, invocation: Invocation, span: Any, exc: BaseException | None) -> None:
        call = self._take(invocation.event_id)
        if call is None:
            return  # not one of this client's calls
        kept = decide(failed=exc is not None, head_sampled=_head_sampled(span), drawn=invocation.sampled).kept
        if self._level.chain and decide(failed=exc is not None, drawn=invocation.sampled).kept:
            chain_set(invocation.event_id)
        if not kept or not isinstance(span, ReadableSpan):
            logger.debug("leanllm-otel: event %s sampled out", invocation.event_id)
            return
        entry = _Entry(span, invocation.record, self._renderer)
        if self._ring is not None:
            with self._lock:
                self._ring.append(entry)
        if exc is not None:
            self.hooks.fire_error(exc, call.snapshot)
        elif self.hooks.post_call is not None:
            self.hooks.fire_post_call(entry.metadata_event())
        if self.config.debug:
            print_summary(entry.metadata_event())

    # --- public API: calls ----------------------------------------------------------------------------------------
    def chat(
        self,
        model: str,
        messages: list[dict[str, Any]],
        labels: Mapping[str, str] | None = None,
        *,
        request_id: str | None = None,
        correlation_id: str | None = None,
        parent_request_id: str | None = None,
        context: LeanLLMContext | None = None,
        log: bool = True,
        sample: float | None = None,
        redaction_mode: RedactionMode | str | None = None,
        **kwargs: Any,
    ) -> Any:
        """``litellm.completion(model, messages, **kwargs)`` as one event; returns LiteLLM's own response (or its
        stream, for ``stream=True``). Everything not listed here is forwarded to LiteLLM unchanged."""
        control = _control(labels, request_id, correlation_id, parent_request_id, context, log, sample, redaction_mode)
        return self._invoke("completion", "chat", model, kwargs, {"messages": messages}, control)

    async def achat(
        self,
        model: str,
        messages: list[dict[str, Any]],
        labels: Mapping[str, str] | None = None,
        *,
        request_id: str | None = None,
        correlation_id: str | None = None,
        parent_request_id: str | None = None,
        context: LeanLLMContext | None = None,
        log: bool = True,
        sample: float | None = None,
        redaction_mode: RedactionMode | str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Async :meth:`chat` (``litellm.acompletion``)."""
        control = _control(labels, request_id, correlation_id, parent_request_id, context, log, sample, redaction_mode)
        return await self._ainvoke("acompletion", "chat", model, kwargs, {"messages": messages}, control)

    def completion(
        self,
        model: str,
        prompt: str,
        labels: Mapping[str, str] | None = None,
        *,
        request_id: str | None = None,
        correlation_id: str | None = None,
        parent_request_id: str | None = None,
        context: LeanLLMContext | None = None,
        log: bool = True,
        sample: float | None = None,
        redaction_mode: RedactionMode | str | None = None,
        **kwargs: Any,
    ) -> Any:
        """A single-prompt call: ``chat`` with ``[{"role": "user", "content": prompt}]``.

        It goes through the chat API (every LiteLLM provider supports it; legacy ``/completions`` endpoints do not
        exist for most models) and returns the same ``ModelResponse`` as :meth:`chat`. For a provider's legacy
        completion endpoint call ``litellm.text_completion`` directly; it is traced too.
        """
        control = _control(labels, request_id, correlation_id, parent_request_id, context, log, sample, redaction_mode)
        messages = [{"role": "user", "content": prompt}]
        return self._invoke("completion", "chat", model, kwargs, {"messages": messages}, control)

    async def acompletion(
        self,
        model: str,
        prompt: str,
        labels: Mapping[str, str] | None = None,
        *,
        request_id: str | None = None,
        correlation_id: str | None = None,
        parent_request_id: str | None = None,
        context: LeanLLMContext | None = None,
        log: bool = True,
        sample: float | None = None,
        redaction_mode: RedactionMode | str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Async :meth:`completion`."""
        control = _control(labels, request_id, correlation_id, parent_request_id, context, log, sample, redaction_mode)
        messages = [{"role": "user", "content": prompt}]
        return await self._ainvoke("acompletion", "chat", model, kwargs, {"messages": messages}, control)

    def embed(
        self,
        model: str,
        input: str | Sequence[Any],
        labels: Mapping[str, str] | None = None,
        *,
        request_id: str | None = None,
        correlation_id: str | None = None,
        parent_request_id: str | None = None,
        context: LeanLLMContext | None = None,
        log: bool = True,
        sample: float | None = None,
        redaction_mode: RedactionMode | str | None = None,
        **kwargs: Any,
    ) -> Any:
        """``litellm.embedding(model, input, **kwargs)`` as one event; returns LiteLLM's ``EmbeddingResponse``."""
        control = _control(labels, request_id, correlation_id, parent_request_id, context, log, sample, redaction_mode)
        return self._invoke("embedding", "embeddings", model, kwargs, {"input": input}, control)

    async def aembed(
        self,
        model: str,
        input: str | Sequence[Any],
        labels: Mapping[str, str] | None = None,
        *,
        request_id: str | None = None,
        correlation_id: str | None = None,
        parent_request_id: str | None = None,
        context: LeanLLMContext | None = None,
        log: bool = True,
        sample: float | None = None,
        redaction_mode: RedactionMode | str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Async :meth:`embed` (``litellm.aembedding``)."""
        control = _control(labels, request_id, correlation_id, parent_request_id, context, log, sample, redaction_mode)
        return await self._ainvoke("aembedding", "embeddings", model, kwargs, {"input": input}, control)

    # --- public API: recent events and pipeline state -----------------------------------------------------------
    @property
    def last_event(self) -> LLMEvent | None:
        """The newest kept event of this client (None when none yet or ``last_event_buffer=0``).

        Content (messages, output) is rendered on first read, in the configured redaction form.
        """
        with self._lock:
            entry = self._ring[-1] if self._ring else None
        return entry.event() if entry is not None else None

    def recent_events(self, n: int | None = None) -> list[LLMEvent]:
        """Up to ``n`` (default: all buffered) newest kept events, oldest first (the last one is ``last_event``)."""
        with self._lock:
            entries = list(self._ring) if self._ring is not None else []
        if n is not None:
            entries = entries[-n:] if n > 0 else []
        return [entry.event() for entry in entries]

    @property
    def dropped_events_count(self) -> int:
        """Events the process's export pipeline gave up on (queue overflow, retries spent); 0 without one."""
        return self._pipeline.dropped_events_count if self._pipeline is not None else 0

    @property
    def events_in_flight(self) -> int:
        """Events queued for export and not yet handed to an exporter."""
        if self._pipeline is None:
            return 0
        total = 0
        for batch in self._pipeline.batch_processors:
            queue = otel_compat.batch_queue(batch)
            if queue is not None:
                total += len(queue)
        return total

    @property
    def pipeline(self) -> Pipeline | None:
        """The export pipeline this client feeds (None when the app instrumented LiteLLM without ``configure``)."""
        return self._pipeline

    @property
    def closed(self) -> bool:
        return self._closed

    def flush(self, timeout_millis: int | None = None) -> bool:
        """Export everything queued so far; True when it all went out within the timeout."""
        if self._pipeline is not None:
            return self._pipeline.force_flush(timeout_millis)
        provider = trace_api.get_tracer_provider()
        flush = getattr(provider, "force_flush", None)
        return bool(flush(timeout_millis or 30000)) if callable(flush) else True

    def close(self) -> None:
        """Flush, stop listening, and shut the pipeline down if this was the last client sharing the one clients
        built. LiteLLM is uninstrumented then. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            telemetry, self._telemetry = self._telemetry, None
            holds, self._holds_shared = self._holds_shared, False
        if telemetry is not None:
            telemetry.remove_end_listener(self._listener)
        try:
            if holds:
                _SHARED.release(self._pipeline)
            else:
                self.flush()
        finally:
            store, self._store = self._store, None
            if store is not None:
                store.close()

    def __enter__(self) -> LeanLLM:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> LeanLLM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.close)

    # --- public API: stored events --------------------------------------------------------------------------------
    def _database_url(self) -> str:
        config = self.config
        if not config.enable_persistence:
            raise PersistenceUnavailableError(
                "persistence is off (enable_persistence=False / LEANLLM_ENABLE_PERSISTENCE=false): no stored events "
                "to query; use client.last_event / client.recent_events()"
            )
        if config.leanllm_api_key is not None:
            raise PersistenceUnavailableError(
                "events go to the remote LeanLLM service (leanllm_api_key is set); query them there, or configure "
                "database_url for a local SQL store"
            )
        if config.database_url is None:
            raise PersistenceUnavailableError(
                "no database_url configured (LEANLLM_DATABASE_URL): events live only in client.last_event / "
                "client.recent_events()"
            )
        return config.database_url

    def _sync_store(self) -> EventStore:
        url = self._database_url()
        with self._lock:
            if self._store is None:
                from leanllm_otel.store.queries import EventStore

                store = EventStore(url)
                if self.config.auto_migrate:
                    store.migrate()  # an empty store answers "no events", not "no schema"
                self._store = store
            return self._store

    def _async_store(self) -> AsyncEventStore:
        from leanllm_otel.store.queries import AsyncEventStore

        return AsyncEventStore(self._database_url())

    def _read_your_writes(self) -> None:
        if self._pipeline is not None and self.events_in_flight:
            self.flush()

    def score(self, event_id: str, name: str, value: Any, comment: str | None = None) -> Any:
        """Record a feedback score for one of this client's events (see :func:`leanllm_otel.score`).

        Returns the stored ``Score``, or None when the store failed (logged). The call's trace and span come from
        this client's recent events when the event has not been exported yet.
        """
        from leanllm_otel.evaluation import EvaluatedCall
        from leanllm_otel.feedback import record_for

        config = self.config if self.config.persistence_target == "sql" else self.config.replace(database_url=None)
        known = next((e for e in reversed(self.recent_events()) if e.event_id == event_id), None)
        call = EvaluatedCall(known.trace_id, known.span_id, known.response_id) if known is not None else None
        return record_for(config, self._pipeline, event_id, name, value, comment, call)

    def get_event(self, event_id: str) -> LLMEvent | None:
        """The stored event with this id (pending exports are flushed first), or None."""
        store = self._sync_store()
        self._read_your_writes()
        return store.get_event(event_id)

    def list_events(
        self,
        *,
        correlation_id: str | None = None,
        model: str | None = None,
        labels: Mapping[str, str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        errors_only: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> list[LLMEvent]:
        """Stored events matching every given criterion, newest first (pending exports are flushed first)."""
        store = self._sync_store()
        self._read_your_writes()
        return store.list_events(
            correlation_id=correlation_id,
            model=model,
            labels=labels,
            since=since,
            until=until,
            errors_only=errors_only,
            limit=limit,
            offset=offset,
        )

    def count_events(
        self,
        *,
        correlation_id: str | None = None,
        model: str | None = None,
        labels: Mapping[str, str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        errors_only: bool = False,
    ) -> int:
        """How many stored events match (pending exports are flushed first)."""
        store = self._sync_store()
        self._read_your_writes()
        return store.count_events(
            correlation_id=correlation_id,
            model=model,
            labels=labels,
            since=since,
            until=until,
            errors_only=errors_only,
        )

    async def _with_async_store(self, operation: Callable[[AsyncEventStore], Any]) -> Any:
        store = self._async_store()
        if self._pipeline is not None and self.events_in_flight:
            await asyncio.to_thread(self.flush)
        try:
            if self.config.auto_migrate and not self._async_migrated:
                await store.migrate()
                self._async_migrated = True
            return await operation(store)
        finally:
            await store.close()

    async def aget_event(self, event_id: str) -> LLMEvent | None:
        """Async :meth:`get_event`."""
        result: LLMEvent | None = await self._with_async_store(lambda s: s.get_event(event_id))
        return result

    async def alist_events(self, **criteria: Any) -> list[LLMEvent]:
        """Async :meth:`list_events` (same keyword arguments)."""
        result: list[LLMEvent] = await self._with_async_store(lambda s: s.list_events(**criteria))
        return result

    async def acount_events(self, **criteria: Any) -> int:
        """Async :meth:`count_events` (same keyword arguments)."""
        result: int = await self._with_async_store(lambda s: s.count_events(**criteria))
        return result


def _control(
    labels: Mapping[str, str] | None,
    request_id: str | None,
    correlation_id: str | None,
    parent_request_id: str | None,
    context: LeanLLMContext | None,
    log: bool,
    sample: float | None,
    redaction_mode: RedactionMode | str | None,
) -> dict[str, Any]:
    return {
        "labels": labels,
        "request_id": request_id,
        "correlation_id": correlation_id,
        "parent_request_id": parent_request_id,
        "context": context,
        "log": log,
        "sample": sample,
        "redaction_mode": redaction_mode,
    }


def _prepare_args(control: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in control.items() if key != "log"}


# --- module-level default client -----------------------------------------------------------------------------------

_DEFAULT: LeanLLM | None = None
_DEFAULT_LOCK = threading.Lock()


def init(
    api_key: str | None = None,
    config: LeanLLMConfig | None = None,
    *,
    pre_call_hook: PreCallHook | None = None,
    post_call_hook: PostCallHook | None = None,
    error_hook: ErrorHook | None = None,
    on_dropped_events: DroppedEventsHook | None = None,
) -> LeanLLM:
    """Create the module-level default client (closing a previous one). Thread-safe; returns the client."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        previous, _DEFAULT = _DEFAULT, None
        if previous is not None:
            previous.close()
        _DEFAULT = LeanLLM(
            api_key,
            config,
            pre_call_hook=pre_call_hook,
            post_call_hook=post_call_hook,
            error_hook=error_hook,
            on_dropped_events=on_dropped_events,
        )
        return _DEFAULT


def get_client() -> LeanLLM:
    """The default client, created from the environment on first use when ``init()`` was not called."""
    global _DEFAULT
    client = _DEFAULT
    if client is not None and not client.closed:
        return client
    with _DEFAULT_LOCK:
        if _DEFAULT is None or _DEFAULT.closed:
            _DEFAULT = LeanLLM()
        return _DEFAULT


def chat(model: str, messages: list[dict[str, Any]], labels: Mapping[str, str] | None = None, **kwargs: Any) -> Any:
    """``get_client().chat(...)``."""
    return get_client().chat(model, messages, labels, **kwargs)


def completion(model: str, prompt: str, labels: Mapping[str, str] | None = None, **kwargs: Any) -> Any:
    """``get_client().completion(...)``."""
    return get_client().completion(model, prompt, labels, **kwargs)


def shutdown() -> None:
    """Close the default client (flushing its events). Safe to call when none exists."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        client, _DEFAULT = _DEFAULT, None
    if client is not None:
        client.close()
