"""Everything leanllm-otel assumes about LiteLLM's internals, in one place.

Checked against LiteLLM 1.80.0, 1.100.5, 1.108.7 and 1.110.2 (``TESTED_RANGE``; the version matrix in
``noxfile.py`` runs the instrumentation's tests on them). What changed across that range, and how it is handled:

- **The ``@client`` wrapper.** Up to 1.10x the public ``litellm.completion`` *is* LiteLLM's ``@client`` wrapper,
  whose closure holds the undecorated function in a cell named ``original_function``. From 1.108 the chat,
  embedding and Responses entry points are thin dispatch functions (``litellm.chat_completions.dispatch``) that
  call the ``@client`` wrapper they name in ``__wrapped__``. :func:`client_cell` follows ``__wrapped__`` to the
  first function that has the cell.
- **Exception classes.** Which class an HTTP error becomes is LiteLLM's decision, made from the OpenAI SDK's
  exception, and it moves: with OpenAI SDK 3.38+ (which LiteLLM 1.108+ installs) an OpenAI
  ``content_policy_violation`` 400 becomes ``BadRequestError`` instead of ``ContentPolicyViolationError``, and a 403
  ``APIError`` carrying 403 instead of ``BadRequestError``. The error kind follows the class LiteLLM raised
  (:data:`EXCEPTION_KINDS`, read by ``leanllm_otel.errors``), refined by the HTTP status only for the generic
  classes (:data:`GENERIC_EXCEPTIONS`).
- **Stream wrappers.** Streams are ``CustomStreamWrapper`` (chat), ``ResponsesAPIStreamingIterator`` (Responses),
  or plain (async) iterators of bytes (the Anthropic messages interface): :func:`is_stream` accepts any iterator.
- **Response metadata.** Cost and the resolved provider sit in ``_hidden_params`` (:func:`hidden_params`);
  ``get_llm_provider`` returns ``(model, provider, api_key, api_base)`` (:func:`resolve_provider`).
- **Proxy hooks.** ``CustomLogger`` in ``litellm.integrations.custom_logger`` and the ``turn_off_message_logging``
  module flag (:func:`custom_logger_class`, :func:`message_logging_off`).

Nothing here imports LiteLLM at module import; every function does so on first use.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Mapping
from types import CellType, ModuleType
from typing import Any

from packaging.version import InvalidVersion, Version

logger = logging.getLogger("leanllm_otel")

TESTED_RANGE: tuple[str, str] = ("1.80.0", "1.110.2")
"""The oldest and newest LiteLLM releases the version matrix has run the instrumentation's tests on."""

_CLIENT_CELL = "original_function"
_WRAPPED_DEPTH = 4

# LiteLLM's (and the OpenAI SDK's, which LiteLLM's classes subclass) exception class names -> error kind value.
# Looked up along the MRO, most specific class first; ``errors.error_kind`` adds the transport classes.
EXCEPTION_KINDS: dict[str, str] = {
    "ContextWindowExceededError": "context_window",
    "ContentPolicyViolationError": "content_policy",
    "BudgetExceededError": "budget",
    "Timeout": "timeout",
    "APITimeoutError": "timeout",
    "RateLimitError": "rate_limit",
    "AuthenticationError": "authentication",
    "PermissionDeniedError": "permission",
    "NotFoundError": "not_found",
    "BadRequestError": "bad_request",
    "UnprocessableEntityError": "bad_request",
    "UnsupportedParamsError": "bad_request",
    "InvalidRequestError": "bad_request",
    "APIConnectionError": "connection",
    "InternalServerError": "provider_error",
    "ServiceUnavailableError": "provider_error",
    "BadGatewayError": "provider_error",
    "APIError": "provider_error",
    "APIStatusError": "provider_error",
}

GENERIC_EXCEPTIONS = frozenset({"APIError", "APIStatusError"})
"""Classes that say only "the provider answered with an error": their HTTP status tells the kind better."""


def installed_version() -> str | None:
    """The installed LiteLLM's version string, or None when LiteLLM is not installed."""
    try:
        return importlib.metadata.version("litellm")
    except importlib.metadata.PackageNotFoundError:
        return None


def is_tested(version: str | None) -> bool:
    """Whether ``version`` lies inside ``TESTED_RANGE`` (an unparsable or missing version does not)."""
    if version is None:
        return False
    try:
        return Version(TESTED_RANGE[0]) <= Version(version) <= Version(TESTED_RANGE[1])
    except InvalidVersion:
        return False


def check_version(version: str | None = None) -> bool:
    """Log one warning when the installed LiteLLM is outside the tested range; True when it is inside."""
    version = installed_version() if version is None else version
    if is_tested(version):
        return True
    logger.warning(
        "leanllm-otel: LiteLLM %s is outside the tested range %s to %s; calls are traced where the entry points "
        "exist, but spans may miss fields",
        version,
        *TESTED_RANGE,
    )
    return False


def client_cell(function: Callable[..., Any]) -> CellType | None:
    """The ``original_function`` cell of the ``@client`` wrapper behind ``function``, or None if there is none."""
    current: Any = function
    for _ in range(_WRAPPED_DEPTH):
        code = getattr(current, "__code__", None)
        closure = getattr(current, "__closure__", None)
        if code is not None and closure and _CLIENT_CELL in code.co_freevars:
            cell = closure[code.co_freevars.index(_CLIENT_CELL)]
            return cell if callable(cell.cell_contents) else None
        current = getattr(current, "__wrapped__", None)
        if current is None:
            return None
    return None


def anthropic_messages() -> ModuleType | None:
    """``litellm.anthropic.messages`` (the Anthropic-style interface), where the installed LiteLLM has it."""
    import litellm

    interface = getattr(litellm, "anthropic", None)
    messages = getattr(interface, "messages", None)
    return messages if isinstance(messages, ModuleType) else None


def is_stream(result: Any) -> bool:
    """Whether a call's result is a stream to observe chunk by chunk (sync or async iterator)."""
    return hasattr(result, "__next__") or hasattr(result, "__anext__")


def hidden_params(result: Any) -> Mapping[str, Any]:
    """LiteLLM's ``_hidden_params`` of a response or stream (``response_cost``, ``custom_llm_provider``)."""
    # On a response it is a pydantic private attribute: ``getattr`` reaches it through pydantic's ``__getattr__``
    # after a failed class lookup (~3 us a read); the private dict holds the same object.
    private = getattr(result, "__pydantic_private__", None)
    if type(private) is dict and "_hidden_params" in private:
        hidden = private["_hidden_params"]
    else:  # streams (a plain attribute), or a LiteLLM that stores it elsewhere
        hidden = getattr(result, "_hidden_params", None)
    return hidden if isinstance(hidden, Mapping) else {}


def resolve_provider(model: str, custom_llm_provider: str | None, api_base: str | None) -> tuple[str, str | None]:
    """(model without the routing prefix, LiteLLM provider), by LiteLLM's own ``get_llm_provider``."""
    import litellm

    resolved, provider, _, _ = litellm.get_llm_provider(
        model=model, custom_llm_provider=custom_llm_provider, api_base=api_base
    )
    return str(resolved), str(provider) if provider else None


def custom_logger_class() -> type:
    """The base class of LiteLLM callbacks (what the proxy's ``callbacks:`` entries are instances of)."""
    from litellm.integrations.custom_logger import CustomLogger

    return CustomLogger


def message_logging_off() -> bool:
    """Whether LiteLLM's ``turn_off_message_logging`` is on in this process."""
    import litellm

    return bool(getattr(litellm, "turn_off_message_logging", False))
