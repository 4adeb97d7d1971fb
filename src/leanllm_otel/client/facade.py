"""``LeanLLM``: the LeanLLM client API, built on the same spans, processor and exporters as everything else.

::

    from leanllm_otel import LeanLLM, LeanLLMConfig
    client = LeanLLM(api_key="sk-...", config=LeanLLMConfig(database_url="sqlite:///events.db"))
    response = client.chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hi."}],
                           labels={"feature": "demo"})
    client.last_event            # the LLMEvent of that call

The client adds hooks, the ``last_event`` ring buffer, debug summaries and the events API on top of the
instrumentor's spans. LiteLLM is instrumented once per process (:mod:`leanllm_otel.client.shared`); a client whose
store, service or renderer differ from that pipeline's gets sinks of its own (:mod:`leanllm_otel.client.routes`),
so each client's events reach exactly its own configuration's sinks. Per-call behaviour (``sampling_rate``,
``redaction_mode``/``capture_content``, ``environment``, ``auto_chain`` on) follows each client's own config, at
config precedence (per call > context > config).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as trace_api

from leanllm_otel import otel_compat
from leanllm_otel.client.calls import CallControl, CallPath, PendingCall
from leanllm_otel.client.errors import ClientClosedError
from leanllm_otel.client.events import Entry, EventsAPI
from leanllm_otel.client.kept import KeptSpans, kept_source
from leanllm_otel.client.routes import ClientSinks, check_compatible, has_sinks, live_config, shares_sinks
from leanllm_otel.client.shared import SHARED, ConfigLevel
from leanllm_otel.config import ConfigError, LeanLLMConfig
from leanllm_otel.context import LeanLLMContext
from leanllm_otel.debug import enable_debug_logging
from leanllm_otel.hooks import DroppedEventsHook, ErrorHook, Hooks, PostCallHook, PreCallHook
from leanllm_otel.instrumentation.instrumentor import LeanLLMInstrumentor
from leanllm_otel.processing.rendering import Renderer
from leanllm_otel.redaction_mode import RedactionMode
from leanllm_otel.settings import TelemetrySettings

if TYPE_CHECKING:
    from leanllm_otel.exporters.delivery import DropCounter
    from leanllm_otel.instrumentation.telemetry import Telemetry
    from leanllm_otel.pipeline import Pipeline
    from leanllm_otel.store.queries import EventStore

logger = logging.getLogger(__name__)


class LeanLLM(CallPath, EventsAPI):
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
        self._pending: dict[str, list[PendingCall]] = {}
        size = self.config.last_event_buffer
        self._ring: collections.deque[Entry] | None = collections.deque(maxlen=size) if size > 0 else None
        self._closed = False
        self._listener = self._on_end  # one bound method, so remove_end_listener finds it
        self._kept = KeptSpans(self._is_pending)
        self._drop_callback = self._forward_drop  # one bound method, registered once, so remove_callback finds it
        self._drops_heard: DropCounter | None = None
        self._telemetry: Telemetry | None = None
        self._pipeline: Pipeline | None = None
        self._holds_shared = False
        self._sinks: ClientSinks | None = None  # this client's own route, when its sinks are not the pipeline's
        self._renderer: Renderer | None = None
        self._level = ConfigLevel()
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
                SHARED.release(self._pipeline)
                self._holds_shared = False
            pipeline, holds = SHARED.acquire(self.config)
            telemetry = LeanLLMInstrumentor().telemetry
            if telemetry is None:  # pragma: no cover - configure() always instruments
                raise RuntimeError("leanllm-otel: LiteLLM could not be instrumented")
            routed = not shares_sinks(self.config, live_config(pipeline))
            try:
                check_compatible(self.config, telemetry.settings, pipeline, routed and has_sinks(self.config))
            except ConfigError:
                if holds:
                    SHARED.release(pipeline)
                raise
            self._pipeline, self._holds_shared = pipeline, holds
            if routed and self._sinks is None:
                self._sinks = ClientSinks(self.config, pipeline)
            if self._sinks is not None:
                self._sinks.attach(pipeline)
                self._renderer = self._sinks.renderer
                self._hear_drops(self._sinks.drops)
            else:
                self._hear_drops(pipeline.drops if pipeline is not None else None)
                hash_key = self.config.hash_key.get_secret_value().encode() if self.config.hash_key else None
                self._renderer = (
                    pipeline.processor.renderer if pipeline is not None else Renderer(telemetry.settings, hash_key)
                )
            self._level = ConfigLevel.between(self._settings, telemetry.settings)
            self._kept.listen(kept_source(telemetry, pipeline))
            telemetry.add_end_listener(self._listener)
            self._telemetry = telemetry
            logger.debug("leanllm-otel client attached (shared pipeline: %s)", holds)
            return telemetry

    def _hear_drops(self, drops: DropCounter | None) -> None:
        """Forward ``drops`` (and no other counter) to the ``on_dropped_events`` hook: registered once."""
        if self.hooks.dropped is None or drops is self._drops_heard:
            return
        if self._drops_heard is not None:
            self._drops_heard.remove_callback(self._drop_callback)
        self._drops_heard = drops
        if drops is not None:
            drops.add_callback(self._drop_callback)

    def _forward_drop(self, count: int, reason: str) -> None:
        if not self._closed:
            self.hooks.fire_dropped(count, reason)

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
        ctl = CallControl(labels, request_id, correlation_id, parent_request_id, context, log, sample, redaction_mode)
        return self._invoke("completion", "chat", model, kwargs, {"messages": messages}, ctl)

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
        ctl = CallControl(labels, request_id, correlation_id, parent_request_id, context, log, sample, redaction_mode)
        return await self._ainvoke("acompletion", "chat", model, kwargs, {"messages": messages}, ctl)

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
        ctl = CallControl(labels, request_id, correlation_id, parent_request_id, context, log, sample, redaction_mode)
        messages = [{"role": "user", "content": prompt}]
        return self._invoke("completion", "chat", model, kwargs, {"messages": messages}, ctl)

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
        ctl = CallControl(labels, request_id, correlation_id, parent_request_id, context, log, sample, redaction_mode)
        messages = [{"role": "user", "content": prompt}]
        return await self._ainvoke("acompletion", "chat", model, kwargs, {"messages": messages}, ctl)

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
        ctl = CallControl(labels, request_id, correlation_id, parent_request_id, context, log, sample, redaction_mode)
        return self._invoke("embedding", "embeddings", model, kwargs, {"input": input}, ctl)

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
        ctl = CallControl(labels, request_id, correlation_id, parent_request_id, context, log, sample, redaction_mode)
        return await self._ainvoke("aembedding", "embeddings", model, kwargs, {"input": input}, ctl)

    @property
    def dropped_events_count(self) -> int:
        """Events this client's export path gave up on (queue overflow, retries spent); 0 without one."""
        if self._sinks is not None:
            return self._sinks.drops.total
        return self._pipeline.dropped_events_count if self._pipeline is not None else 0

    @property
    def events_in_flight(self) -> int:
        """Events queued for export and not yet handed to an exporter."""
        if self._sinks is not None:
            batches: Sequence[Any] = self._sinks.route.processors
        elif self._pipeline is not None:
            batches = self._pipeline.batch_processors
        else:
            return 0
        total = 0
        for batch in batches:
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
        if self._sinks is not None:
            return self._sinks.flush(timeout_millis if timeout_millis is not None else self.config.export_timeout_ms)
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
        self._kept.listen(None)
        with self._lock:
            drops, self._drops_heard = self._drops_heard, None
        if drops is not None:
            drops.remove_callback(self._drop_callback)
        try:
            if self._sinks is not None:  # only this client's own sinks: flushed and shut down
                self._sinks.close(self.config.shutdown_timeout_ms)
            if holds:
                SHARED.release(self._pipeline)
            elif self._sinks is None:
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
