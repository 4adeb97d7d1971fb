"""The module-level default client: ``init()``, ``get_client()``, ``chat()``, ``completion()``, ``shutdown()``."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from leanllm_otel.client.facade import LeanLLM
from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.hooks import DroppedEventsHook, ErrorHook, PostCallHook, PreCallHook

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
