"""The content snapshot a sampled-in call leaves beside its span, and how it reaches the processor.

The wrapper never writes raw content into span attributes. It keeps references (a shallow copy of the message list,
the response object or the stream's chunks) in a ``CallRecord`` and hands it to ``LeanLLMSpanProcessor.on_end``
through a context variable set for the duration of ``span.end()``. ``on_end`` runs synchronously inside ``end()``
on the same thread, so no registry (and nothing that could leak) is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from leanllm_otel.redaction_mode import RedactionMode


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
    extra: dict[str, Any] = field(default_factory=dict)


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
