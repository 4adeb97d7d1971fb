"""The fixed error-kind enum and its mapping from LiteLLM's (and the transport's) exception classes."""

from __future__ import annotations

from enum import Enum

from leanllm_otel.instrumentation import litellm_compat


class ErrorKind(str, Enum):
    TIMEOUT = "timeout"
    RATE_LIMIT = "rate_limit"
    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    BAD_REQUEST = "bad_request"
    CONTEXT_WINDOW = "context_window"
    CONTENT_POLICY = "content_policy"
    NOT_FOUND = "not_found"
    PROVIDER_ERROR = "provider_error"
    CONNECTION = "connection"
    BUDGET = "budget"
    UNKNOWN = "unknown"


# Looked up along the exception's MRO, most specific class first, by class name so that importing this module never
# imports LiteLLM. LiteLLM's own classes (and the OpenAI SDK's they subclass) are listed in ``litellm_compat``.
_BY_CLASS_NAME: dict[str, ErrorKind] = {
    **{name: ErrorKind(kind) for name, kind in litellm_compat.EXCEPTION_KINDS.items()},
    "LeanLLMBudgetExceeded": ErrorKind.BUDGET,  # refused by a leanllm-otel budget (guardrails)
    "LeanLLMPolicyViolation": ErrorKind.CONTENT_POLICY,  # refused by opt-in enforcement (guardrails)
    "TimeoutError": ErrorKind.TIMEOUT,
    "TimeoutException": ErrorKind.TIMEOUT,  # httpx
    "ConnectError": ErrorKind.CONNECTION,  # httpx
    "ConnectionError": ErrorKind.CONNECTION,
}

# What a 4xx status means when the class only says "the provider answered with an error" (``APIError``).
_BY_STATUS: dict[int, ErrorKind] = {
    400: ErrorKind.BAD_REQUEST,
    401: ErrorKind.AUTHENTICATION,
    403: ErrorKind.PERMISSION,
    404: ErrorKind.NOT_FOUND,
    408: ErrorKind.TIMEOUT,
    413: ErrorKind.BAD_REQUEST,
    422: ErrorKind.BAD_REQUEST,
    429: ErrorKind.RATE_LIMIT,
}


_TRANSPORT_KINDS = (ErrorKind.CONNECTION, ErrorKind.TIMEOUT)
_CHAIN_DEPTH = 8


def error_kind(exc: BaseException) -> ErrorKind:
    """Map an exception to the fixed ``leanllm.error.kind`` enum.

    The kind follows the class LiteLLM raised; for the generic ``APIError`` a 4xx status it carries decides
    (LiteLLM 1.108 raises ``APIError`` with status 403 where earlier releases raised ``BadRequestError``).
    LiteLLM's OpenAI mapping reports a refused connection as ``InternalServerError`` (the OpenAI SDK gives
    ``APIConnectionError`` status 500); when the class says only "provider error" or nothing, a connection or
    timeout error in the exception's cause chain is the better answer.
    """
    kind = _kind_of(exc)
    if kind in (ErrorKind.PROVIDER_ERROR, ErrorKind.UNKNOWN):
        cause = exc.__cause__ or exc.__context__
        for _ in range(_CHAIN_DEPTH):
            if cause is None:
                break
            chained = _kind_of(cause)
            if chained in _TRANSPORT_KINDS:
                return chained
            cause = cause.__cause__ or cause.__context__
    return kind


def _kind_of(exc: BaseException) -> ErrorKind:
    for cls in type(exc).__mro__:
        kind = _BY_CLASS_NAME.get(cls.__name__)
        if kind is not None:
            if kind is ErrorKind.CONNECTION and cls.__module__ == "builtins" and isinstance(exc, TimeoutError):
                return ErrorKind.TIMEOUT
            if cls.__name__ in litellm_compat.GENERIC_EXCEPTIONS:
                return _BY_STATUS.get(status_code_of(exc) or 0, kind)
            return kind
    return ErrorKind.UNKNOWN


def status_code_of(exc: BaseException) -> int | None:
    """The HTTP status code an exception carries, when it carries one."""
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) and 100 <= code <= 599 else None
