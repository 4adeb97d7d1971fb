"""The content snapshot a sampled-in call leaves beside its span, and how it reaches the processor.

The wrapper never writes raw content into span attributes. It keeps references (the message list, the response
object or the stream's chunks) in a ``CallRecord``; when the call ends, :meth:`CallRecord.seal` copies their
containers (:func:`freeze`), so an application that later edits a message dict or a returned response (a shared
``history`` list) cannot change what the event records. Strings are immutable and shared, so the copy costs per
container, not per character. A record that is only scanned (no content leaves, ``copy_at_end`` False) is not
copied: the caller pays nothing for the scan, and a later edit changes at most the finding counts. The record
reaches ``LeanLLMSpanProcessor.on_end`` through a context variable set for the duration of ``span.end()``;
``on_end`` runs synchronously inside ``end()`` on the same thread, so no registry (and nothing that could leak) is
needed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from leanllm_otel.redaction_mode import RedactionMode
from leanllm_otel.semconv import OP_EMBEDDINGS


@dataclass(slots=True)
class CallRecord:
    """References to what a call sent and received; serialised only on an export thread."""

    span_id: int
    operation: str
    mode: RedactionMode
    capture: bool
    scan: bool
    api: str = "chat"  # the request / response shape (``OperationSpec.api``)
    messages: list[Any] | None = None
    prompt: Any = None  # text_completion prompt / embeddings input / Responses API input / speech input / query
    tools: Any = None
    response: Any = None
    chunks: list[Any] | None = None
    error_message: str | None = None
    # Every spelling of the call's credentials, cut out of the error message on the export thread; never exported.
    credentials: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    # False for a record only scanned (``TelemetrySettings.copies_content``): ``seal`` keeps the references.
    copy_at_end: bool = True

    def seal(self) -> None:
        """Copy the content containers at call end: what the event records is what was sent and returned.

        Stream chunks are not copied (the chunk objects are LiteLLM's, built for this call).
        """
        if not self.copy_at_end:
            return
        self.messages = freeze(self.messages)
        self.prompt = freeze(self.prompt)
        self.tools = freeze(self.tools)
        # An embeddings response is vectors, never rendered: not worth a copy.
        self.response = None if self.operation == OP_EMBEDDINGS else freeze(self.response)
        if self.extra:
            self.extra = freeze(self.extra)


_LEAVES: frozenset[type] = frozenset({str, int, float, bool, bytes, type(None)})
# Deeper than this a value is kept by reference: real requests are shallow (tool arguments arrive as JSON text),
# and a pathological nesting must not exhaust the caller's stack.
_MAX_FREEZE_DEPTH = 64


def freeze(value: Any, depth: int = 0) -> Any:
    """``value`` with every container copied (dicts, lists and tuples as dicts and lists, objects such as LiteLLM's
    pydantic messages and responses as the dict of their fields); strings, numbers and unknown objects shared."""
    kind = type(value)
    if kind in _LEAVES or depth > _MAX_FREEZE_DEPTH:
        return value
    if kind is dict:
        out = dict(value)
        for key, item in out.items():
            if type(item) not in _LEAVES:
                out[key] = freeze(item, depth + 1)
        return out
    if kind is list or kind is tuple:
        return [item if type(item) in _LEAVES else freeze(item, depth + 1) for item in value]
    if isinstance(value, (str, int, float, bytes)):  # str / int enums and other immutable subclasses
        return value
    if isinstance(value, Mapping):
        return freeze(dict(value), depth)
    # Only pydantic models (LiteLLM's messages and responses) become the dict of their fields; any other object is
    # shared, because its fields need not be its content (a binary speech response holds an httpx response, whose
    # bytes are immutable and are read through a property).
    fields = getattr(value, "__dict__", None) if hasattr(kind, "__pydantic_fields__") else None
    if type(fields) is dict:
        # pydantic models with extra="allow" (LiteLLM's tool calls) keep their values in __pydantic_extra__
        extra = getattr(value, "__pydantic_extra__", None)
        return freeze({**fields, **extra} if type(extra) is dict and extra else fields, depth)
    return value


_PENDING: ContextVar[CallRecord | None] = ContextVar("leanllm_pending_record", default=None)


@contextmanager
def handing_over(record: CallRecord | None) -> Iterator[None]:
    """Make ``record`` visible to span processors while the span ends."""
    token = _PENDING.set(record)
    try:
        yield
    finally:
        _PENDING.reset(token)


def take_pending(span_id: int) -> CallRecord | None:
    """The record of the span now ending, if it is the one handed over."""
    record = _PENDING.get()
    if record is not None and record.span_id == span_id:
        return record
    return None
