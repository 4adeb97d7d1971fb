"""The client's events: the ``last_event`` ring buffer (recent kept events) and the stored-events API."""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import ReadableSpan

from leanllm_otel.client.errors import PersistenceUnavailableError
from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.event import LLMEvent, span_to_event
from leanllm_otel.processing.processor import attach_record
from leanllm_otel.processing.record import CallRecord
from leanllm_otel.processing.rendering import Renderer

if TYPE_CHECKING:
    from leanllm_otel.pipeline import Pipeline
    from leanllm_otel.store.queries import AsyncEventStore, EventStore


class Entry:
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


class EventsAPI:
    """Recent and stored events of ``LeanLLM`` (a mixin: the facade owns the state declared here)."""

    config: LeanLLMConfig
    _lock: threading.RLock
    _ring: collections.deque[Entry] | None
    _store: EventStore | None
    _async_migrated: bool

    @property
    def pipeline(self) -> Pipeline | None:  # pragma: no cover - the facade's
        raise NotImplementedError

    @property
    def events_in_flight(self) -> int:  # pragma: no cover - the facade's
        raise NotImplementedError

    def flush(self, timeout_millis: int | None = None) -> bool:  # pragma: no cover - the facade's
        raise NotImplementedError

    # --- recent events ----------------------------------------------------------------------------------------
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

    # --- stored events ----------------------------------------------------------------------------------------
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
        if self.events_in_flight:
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
        return record_for(config, self.pipeline, event_id, name, value, comment, call)

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
        if self.events_in_flight:
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
