"""The LeanLLM client's hooks: what they receive, and the rule that a hook never breaks the call.

- ``pre_call_hook(snapshot)`` runs before LiteLLM is invoked, also on calls that sampling will drop.
- ``post_call_hook(event)`` runs after a kept successful call has ended (for a stream: when the stream ends).
- ``error_hook(exc, snapshot)`` runs after every failed call, whatever the sampling rate.
- ``on_dropped_events(count, reason)`` runs when the export pipeline gives events up (queue full, retries spent).

Nothing fires for ``log=False``. A hook that raises is logged (logger ``leanllm_otel.hooks``) and swallowed.
The snapshot is a deep copy: mutating it cannot change what the provider receives. It never holds credentials.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from leanllm_otel.sensitive import URL_KWARGS, is_secret_name, strip_url

if TYPE_CHECKING:
    from leanllm_otel.event import LLMEvent

logger = logging.getLogger(__name__)

PreCallHook = Callable[[dict[str, Any]], None]
PostCallHook = Callable[["LLMEvent"], None]
ErrorHook = Callable[[BaseException, dict[str, Any]], None]
DroppedEventsHook = Callable[[int, str], None]


def safe_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of the LiteLLM keyword arguments without credentials (URLs lose user-info and query)."""
    out: dict[str, Any] = {}
    for name, value in kwargs.items():
        if is_secret_name(name):
            continue
        if name in URL_KWARGS and isinstance(value, str):
            out[name] = strip_url(value, keep_query=False)
            continue
        try:
            out[name] = copy.deepcopy(value)
        except Exception:  # an uncopyable object (a client, a lock): show its type, never share it
            out[name] = f"<{type(value).__name__}>"
    return out


def build_snapshot(
    *,
    model: str,
    request_id: str,
    messages: Any = None,
    prompt: Any = None,
    input: Any = None,
    labels: Mapping[str, str] | None = None,
    correlation_id: str | None = None,
    parent_request_id: str | None = None,
    operation: str = "chat",
    kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The dict handed to ``pre_call_hook`` and ``error_hook``: ``model``, ``messages`` (deep copy),
    ``labels``, ``request_id``, ``correlation_id``, ``parent_request_id``, ``operation`` and ``kwargs``
    (credentials removed). ``prompt`` / ``input`` appear for ``completion()`` / ``embed()``."""
    snapshot: dict[str, Any] = {
        "model": model,
        "messages": copy.deepcopy(messages) if messages is not None else None,
        "labels": dict(labels or {}),
        "request_id": request_id,
        "correlation_id": correlation_id,
        "parent_request_id": parent_request_id,
        "operation": operation,
        "kwargs": safe_kwargs(kwargs or {}),
    }
    if prompt is not None:
        snapshot["prompt"] = copy.deepcopy(prompt)
    if input is not None:
        snapshot["input"] = copy.deepcopy(input)
    return snapshot


@dataclass(frozen=True)
class Hooks:
    """The hooks of one client, each called so that it can never raise into the caller."""

    pre_call: PreCallHook | None = None
    post_call: PostCallHook | None = None
    error: ErrorHook | None = None
    dropped: DroppedEventsHook | None = None

    @property
    def needs_snapshot(self) -> bool:
        return self.pre_call is not None or self.error is not None

    def fire_pre_call(self, snapshot: dict[str, Any] | None) -> None:
        if self.pre_call is not None and snapshot is not None:
            _safely("pre_call_hook", self.pre_call, snapshot)

    def fire_post_call(self, event: LLMEvent) -> None:
        if self.post_call is not None:
            _safely("post_call_hook", self.post_call, event)

    def fire_error(self, exc: BaseException, snapshot: dict[str, Any] | None) -> None:
        if self.error is not None:
            _safely("error_hook", self.error, exc, snapshot if snapshot is not None else {})

    def fire_dropped(self, count: int, reason: str) -> None:
        if self.dropped is not None:
            _safely("on_dropped_events", self.dropped, count, reason)


def _safely(name: str, hook: Callable[..., Any], *args: Any) -> None:
    try:
        hook(*args)
    except Exception:
        logger.exception("leanllm-otel: %s raised; the call is unaffected", name)
