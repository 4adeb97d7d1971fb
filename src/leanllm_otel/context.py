"""Ambient call context: who and what a call belongs to, and per-call controls.

Precedence for every field is per-call > ambient (innermost ``use_context`` first) > global context > config.
Everything lives in ``contextvars``, so it follows threads started with ``contextvars.copy_context()`` and asyncio
tasks exactly as the standard library defines.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, fields, replace
from typing import Any

from opentelemetry.trace import get_current_span

from leanllm_otel.redaction_mode import RedactionMode

__all__ = [
    "CallOptions",
    "LeanLLMContext",
    "current_call_options",
    "current_context",
    "set_global_context",
    "trace",
    "use_call_options",
    "use_context",
]


@dataclass(frozen=True, slots=True)
class LeanLLMContext:
    """Who and what a call belongs to; set with ``use_context`` / ``trace`` or passed per call."""

    user_id: str | None = None
    session_id: str | None = None
    feature: str | None = None
    environment: str | None = None
    custom_tags: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    correlation_id: str | None = None
    parent_request_id: str | None = None
    sample: float | None = None
    redaction_mode: RedactionMode | None = None
    log: bool | None = None

    def merged_over(self, outer: LeanLLMContext | None) -> LeanLLMContext:
        """This context's set fields win; unset ones fall back to ``outer``; tags and labels merge."""
        if outer is None:
            return self
        values: dict[str, Any] = {}
        for f in fields(self):
            mine = getattr(self, f.name)
            theirs = getattr(outer, f.name)
            if f.name in ("custom_tags", "labels"):
                values[f.name] = {**theirs, **mine} if theirs else mine
            else:
                values[f.name] = mine if mine is not None else theirs
        return LeanLLMContext(**values)


@dataclass(frozen=True, slots=True)
class CallOptions:
    """Per-call controls (the LeanLLM client's keyword arguments), highest precedence."""

    labels: Mapping[str, str] | None = None
    request_id: str | None = None
    correlation_id: str | None = None
    parent_request_id: str | None = None
    context: LeanLLMContext | None = None
    log: bool | None = None
    sample: float | None = None
    redaction_mode: RedactionMode | None = None


_GLOBAL_CONTEXT: LeanLLMContext | None = None
_AMBIENT: ContextVar[LeanLLMContext | None] = ContextVar("leanllm_context", default=None)
_CALL_OPTIONS: ContextVar[CallOptions | None] = ContextVar("leanllm_call_options", default=None)
# Auto-chain: inside a trace() block the block's own cell; otherwise one slot per OTel trace (so a reused worker
# thread serving unrelated requests never chains them), or per asyncio task / thread when no span is active.
_CHAIN: ContextVar[list[str | None] | None] = ContextVar("leanllm_chain", default=None)
_CHAIN_SLOTS: OrderedDict[tuple[str, int], str] = OrderedDict()
_CHAIN_SLOTS_MAX = 4096
_CHAIN_LOCK = threading.Lock()


def set_global_context(context: LeanLLMContext | None) -> None:
    """Process-wide default context, below every ``use_context`` block."""
    global _GLOBAL_CONTEXT
    _GLOBAL_CONTEXT = context


def current_context() -> LeanLLMContext | None:
    """The ambient context in force here, merged over the global one."""
    ambient = _AMBIENT.get()
    if ambient is None:
        return _GLOBAL_CONTEXT
    return ambient.merged_over(_GLOBAL_CONTEXT)


@contextmanager
def use_context(context: LeanLLMContext | None = None, **values: Any) -> Iterator[LeanLLMContext]:
    """Make ``context`` (and/or the given fields) ambient for the block; inner blocks override outer ones."""
    new = replace(context, **values) if context is not None else LeanLLMContext(**values)
    merged = new.merged_over(_AMBIENT.get())
    token = _AMBIENT.set(merged)
    try:
        yield merged
    finally:
        _AMBIENT.reset(token)


@contextmanager
def trace(correlation_id: str | None = None, **values: Any) -> Iterator[str]:
    """Group the calls of a block under one correlation id (a new one unless given); resets auto-chaining."""
    cid = correlation_id or str(uuid.uuid4())
    chain_token = _CHAIN.set([None])
    try:
        with use_context(correlation_id=cid, **values):
            yield cid
    finally:
        _CHAIN.reset(chain_token)


@contextmanager
def use_call_options(options: CallOptions) -> Iterator[None]:
    """Set per-call options for exactly the LiteLLM call made inside the block (used by the LeanLLM client)."""
    token = _CALL_OPTIONS.set(options)
    try:
        yield
    finally:
        _CALL_OPTIONS.reset(token)


def current_call_options() -> CallOptions | None:
    return _CALL_OPTIONS.get()


def _chain_key() -> tuple[str, int]:
    span_context = get_current_span().get_span_context()
    if span_context.is_valid:
        return ("trace", span_context.trace_id)
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    if task is not None:
        return ("task", id(task))
    return ("thread", threading.get_ident())


def chain_parent() -> str | None:
    """The event id auto-chaining makes the parent of the next call here."""
    cell = _CHAIN.get()
    if cell is not None:
        return cell[0]
    with _CHAIN_LOCK:
        return _CHAIN_SLOTS.get(_chain_key())


def chain_set(event_id: str) -> None:
    """Record ``event_id`` as the last emitted event of the current chain."""
    cell = _CHAIN.get()
    if cell is not None:
        cell[0] = event_id
        return
    key = _chain_key()
    with _CHAIN_LOCK:
        _CHAIN_SLOTS[key] = event_id
        _CHAIN_SLOTS.move_to_end(key)
        while len(_CHAIN_SLOTS) > _CHAIN_SLOTS_MAX:
            _CHAIN_SLOTS.popitem(last=False)


def reset_chain() -> None:
    """Forget the current chain (e.g. at the start of a request handler on a reused thread)."""
    cell = _CHAIN.get()
    if cell is not None:
        cell[0] = None
        return
    with _CHAIN_LOCK:
        _CHAIN_SLOTS.pop(_chain_key(), None)
