"""Errors: LiteLLM's exception reaches the caller unchanged; the span says ERROR with a fixed ``leanllm.error.kind``."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger
from opentelemetry.trace import StatusCode

from leanllm_otel import semconv as sc
from leanllm_otel.errors import ErrorKind, error_kind, status_code_of
from support.litellm_behaviour import CONTENT_POLICY_400, FORBIDDEN_403, NEW_OPENAI_MAPPING

MESSAGES = [{"role": "user", "content": "hello"}]
_REQUEST = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")


def _response(status: int) -> httpx.Response:
    return httpx.Response(status, request=_REQUEST)


# Every kind of the enum, each produced by the real LiteLLM class.
LITELLM_EXCEPTIONS: list[tuple[str, Any, ErrorKind]] = [
    ("Timeout", lambda: litellm.Timeout("timed out", model="gpt-4o-mini", llm_provider="openai"), ErrorKind.TIMEOUT),
    ("RateLimitError", lambda: litellm.RateLimitError("slow down", llm_provider="openai", model="gpt-4o-mini"),
     ErrorKind.RATE_LIMIT),
    ("AuthenticationError",
     lambda: litellm.AuthenticationError("bad key", llm_provider="openai", model="gpt-4o-mini"),
     ErrorKind.AUTHENTICATION),
    *([("PermissionDeniedError",  # LiteLLM 1.80.0 has no PermissionDeniedError (1.100.5 has)
         lambda: litellm.PermissionDeniedError("no", llm_provider="openai", model="gpt-4o-mini",
                                               response=_response(403)),
         ErrorKind.PERMISSION)] if hasattr(litellm, "PermissionDeniedError") else []),
    ("BadRequestError", lambda: litellm.BadRequestError("bad", model="gpt-4o-mini", llm_provider="openai"),
     ErrorKind.BAD_REQUEST),
    ("UnprocessableEntityError",
     lambda: litellm.UnprocessableEntityError("bad", model="gpt-4o-mini", llm_provider="openai",
                                              response=_response(422)),
     ErrorKind.BAD_REQUEST),
    ("ContextWindowExceededError",
     lambda: litellm.ContextWindowExceededError("too long", model="gpt-4o-mini", llm_provider="openai"),
     ErrorKind.CONTEXT_WINDOW),
    ("ContentPolicyViolationError",
     lambda: litellm.ContentPolicyViolationError("policy", model="gpt-4o-mini", llm_provider="openai"),
     ErrorKind.CONTENT_POLICY),
    ("NotFoundError", lambda: litellm.NotFoundError("missing", model="gpt-4o-mini", llm_provider="openai"),
     ErrorKind.NOT_FOUND),
    ("InternalServerError",
     lambda: litellm.InternalServerError("boom", llm_provider="openai", model="gpt-4o-mini"),
     ErrorKind.PROVIDER_ERROR),
    ("ServiceUnavailableError",
     lambda: litellm.ServiceUnavailableError("down", llm_provider="openai", model="gpt-4o-mini"),
     ErrorKind.PROVIDER_ERROR),
    ("BadGatewayError", lambda: litellm.BadGatewayError("gateway", llm_provider="openai", model="gpt-4o-mini"),
     ErrorKind.PROVIDER_ERROR),
    ("APIError", lambda: litellm.APIError(500, "api", llm_provider="openai", model="gpt-4o-mini"),
     ErrorKind.PROVIDER_ERROR),
    ("APIConnectionError",
     lambda: litellm.APIConnectionError("no route", llm_provider="openai", model="gpt-4o-mini"),
     ErrorKind.CONNECTION),
]


class _FailureSpy(CustomLogger):
    """Captures the exception object LiteLLM itself hands to its failure callbacks."""

    def __init__(self) -> None:
        super().__init__()
        self.exceptions: list[BaseException] = []

    # LiteLLM calls these with keyword arguments (kwargs, response_obj, start_time, end_time).
    def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self.exceptions.append(kwargs.get("exception"))

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self.exceptions.append(kwargs.get("exception"))


def _assert_error_span(inst: Any, exc: BaseException, kind: ErrorKind) -> Any:
    span = inst.one_llm_span()
    attrs = dict(span.attributes)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs[sc.ERROR_TYPE] == type(exc).__name__
    assert attrs[sc.LEANLLM_ERROR_KIND] == kind.value
    events = [e for e in span.events if e.name == sc.EXCEPTION_EVENT]
    assert len(events) == 1
    assert events[0].attributes[sc.EXCEPTION_TYPE] == f"{type(exc).__module__}.{type(exc).__qualname__}"
    assert sc.GEN_AI_RESPONSE_ID not in attrs
    return span


@pytest.mark.parametrize(("name", "factory", "kind"), LITELLM_EXCEPTIONS, ids=[n for n, _, _ in LITELLM_EXCEPTIONS])
def test_litellm_exception_classes_map_to_kinds_sync(instrumented: Any, name: str, factory: Any,
                                                     kind: ErrorKind) -> None:
    planted = factory()
    assert type(planted).__name__ == name
    with pytest.raises(type(planted)) as info:
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response=planted)
    assert info.value is planted
    _assert_error_span(instrumented, planted, kind)


@pytest.mark.parametrize(("name", "factory", "kind"), LITELLM_EXCEPTIONS, ids=[n for n, _, _ in LITELLM_EXCEPTIONS])
async def test_litellm_exception_classes_map_to_kinds_async(instrumented: Any, name: str, factory: Any,
                                                            kind: ErrorKind) -> None:
    planted = factory()
    with pytest.raises(type(planted)) as info:
        await litellm.acompletion(model="gpt-4o-mini", messages=MESSAGES, mock_response=planted)
    assert info.value is planted
    _assert_error_span(instrumented, planted, kind)


HTTP_ERRORS = [
    ("openai/err-400", litellm.BadRequestError, ErrorKind.BAD_REQUEST, 400),
    ("openai/err-400-context", litellm.ContextWindowExceededError, ErrorKind.CONTEXT_WINDOW, 400),
    # The class follows the installed LiteLLM + OpenAI SDK (support/litellm_behaviour.py says which versions give
    # which); the kind follows the class, and for the generic APIError the status it carries.
    ("openai/err-400-policy", CONTENT_POLICY_400,
     ErrorKind.BAD_REQUEST if NEW_OPENAI_MAPPING else ErrorKind.CONTENT_POLICY, 400),
    ("openai/err-401", litellm.AuthenticationError, ErrorKind.AUTHENTICATION, 401),
    ("openai/err-403", FORBIDDEN_403, ErrorKind.PERMISSION if NEW_OPENAI_MAPPING else ErrorKind.BAD_REQUEST, 403),
    ("openai/err-404", litellm.NotFoundError, ErrorKind.NOT_FOUND, 404),
    ("openai/err-429", litellm.RateLimitError, ErrorKind.RATE_LIMIT, 429),
    ("openai/err-500", litellm.InternalServerError, ErrorKind.PROVIDER_ERROR, 500),
    ("openai/err-503", litellm.ServiceUnavailableError, ErrorKind.PROVIDER_ERROR, 503),
]


def _http_kwargs(server: Any, model: str) -> dict[str, Any]:
    return {"model": model, "messages": MESSAGES, "api_base": server.base_url, "api_key": "sk-test", "max_retries": 0}


@pytest.mark.parametrize(("model", "exc_class", "kind", "status"), HTTP_ERRORS)
def test_http_errors_from_the_provider_sync(instrumented: Any, openai_server: Any, model: str, exc_class: Any,
                                           kind: ErrorKind, status: int) -> None:
    spy = _FailureSpy()
    litellm.callbacks = [spy]
    with pytest.raises(exc_class) as info:
        litellm.completion(**_http_kwargs(openai_server, model))
    assert type(info.value) is exc_class
    # The very object LiteLLM produced (and handed to its own failure callbacks) reaches the caller.
    deadline = time.monotonic() + 5
    while not spy.exceptions and time.monotonic() < deadline:  # LiteLLM runs failure callbacks off-thread
        time.sleep(0.01)
    assert spy.exceptions and all(e is info.value for e in spy.exceptions)
    span = _assert_error_span(instrumented, info.value, kind)
    assert span.attributes[sc.HTTP_RESPONSE_STATUS_CODE] == status
    assert span.attributes[sc.SERVER_ADDRESS] == "127.0.0.1"


@pytest.mark.parametrize(("model", "exc_class", "kind", "status"), HTTP_ERRORS)
async def test_http_errors_from_the_provider_async(instrumented: Any, openai_server: Any, model: str,
                                                   exc_class: Any, kind: ErrorKind, status: int) -> None:
    # (LiteLLM's async failure callbacks run on a process-wide logging worker tied to the first event loop that
    # used it, so they are no witness under per-test loops; async identity is proven with mock_response instances.)
    with pytest.raises(exc_class) as info:
        await litellm.acompletion(**_http_kwargs(openai_server, model))
    assert type(info.value) is exc_class
    span = _assert_error_span(instrumented, info.value, kind)
    assert span.attributes[sc.HTTP_RESPONSE_STATUS_CODE] == status


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_connection_refused_is_connection(instrumented: Any, mode: str) -> None:
    kwargs = {"model": "openai/gpt-4o-mini", "messages": MESSAGES, "api_key": "sk-test", "max_retries": 0,
              "api_base": f"http://127.0.0.1:{_closed_port()}/v1"}
    # LiteLLM raises InternalServerError for a refused connection (the OpenAI SDK's APIConnectionError carries
    # status 500); the kind comes from the transport error in the cause chain.
    with pytest.raises(litellm.InternalServerError) as info:
        if mode == "sync":
            litellm.completion(**kwargs)
        else:
            await litellm.acompletion(**kwargs)
    _assert_error_span(instrumented, info.value, ErrorKind.CONNECTION)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_request_timeout_is_timeout(instrumented: Any, openai_server: Any, mode: str) -> None:
    kwargs = {"model": "openai/slow-2", "messages": MESSAGES, "api_key": "sk-test", "max_retries": 0,
              "api_base": openai_server.base_url, "timeout": 0.2}
    with pytest.raises(litellm.Timeout) as info:
        if mode == "sync":
            litellm.completion(**kwargs)
        else:
            await litellm.acompletion(**kwargs)
    _assert_error_span(instrumented, info.value, ErrorKind.TIMEOUT)


@pytest.fixture
def over_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(litellm, "max_budget", 0.0001)
    monkeypatch.setattr(litellm, "_current_cost", 1.0)


def test_budget_exceeded_is_budget(instrumented: Any, over_budget: None) -> None:
    with pytest.raises(litellm.BudgetExceededError) as info:
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="never")
    _assert_error_span(instrumented, info.value, ErrorKind.BUDGET)


async def test_budget_exceeded_is_budget_async(instrumented: Any, over_budget: None) -> None:
    with pytest.raises(litellm.BudgetExceededError) as info:
        await litellm.acompletion(model="gpt-4o-mini", messages=MESSAGES, mock_response="never")
    _assert_error_span(instrumented, info.value, ErrorKind.BUDGET)


def test_an_exception_litellm_does_not_map_is_unknown(instrumented: Any) -> None:
    # A call LiteLLM cannot even start (no model): Python's own TypeError, untouched by LiteLLM's mapping.
    with pytest.raises(TypeError) as info:
        litellm.completion(messages=MESSAGES)
    _assert_error_span(instrumented, info.value, ErrorKind.UNKNOWN)


def test_non_openai_exception_as_mock_becomes_litellm_mock_exception(instrumented: Any) -> None:
    """LiteLLM maps a non-OpenAI mock exception (via its ``MockException``) to InternalServerError: provider_error."""
    with pytest.raises(litellm.InternalServerError) as info:
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response=ValueError("x"))
    _assert_error_span(instrumented, info.value, ErrorKind.PROVIDER_ERROR)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (litellm.BudgetExceededError(current_cost=2.0, max_budget=1.0), ErrorKind.BUDGET),
        (litellm.exceptions.GuardrailRaisedException("g", "blocked"), ErrorKind.UNKNOWN),
        (litellm.exceptions.RejectedRequestError("r", model="m", llm_provider="openai",
                                                 request_data={}), ErrorKind.BAD_REQUEST),
        (litellm.UnsupportedParamsError("p", llm_provider="openai", model="m"), ErrorKind.BAD_REQUEST),
        (litellm.exceptions.MidStreamFallbackError("m", model="m", llm_provider="openai"), ErrorKind.PROVIDER_ERROR),
        (litellm.APIError(403, "forbidden", llm_provider="openai", model="m"), ErrorKind.PERMISSION),
        (litellm.APIError(429, "slow down", llm_provider="openai", model="m"), ErrorKind.RATE_LIMIT),
        (litellm.APIError(500, "boom", llm_provider="openai", model="m"), ErrorKind.PROVIDER_ERROR),
        (httpx.ConnectError("refused"), ErrorKind.CONNECTION),
        (httpx.ReadTimeout("slow"), ErrorKind.TIMEOUT),
        (TimeoutError(), ErrorKind.TIMEOUT),
        (ConnectionRefusedError(), ErrorKind.CONNECTION),
        (RuntimeError("x"), ErrorKind.UNKNOWN),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_error_kind_table(exc: BaseException, kind: ErrorKind) -> None:
    assert error_kind(exc) is kind


def test_error_kind_looks_through_the_cause_chain_only_for_generic_kinds() -> None:
    def raised(outer: BaseException, inner: BaseException) -> BaseException:
        try:
            try:
                raise inner
            except BaseException as exc:
                raise outer from exc
        except BaseException as exc:
            return exc

    server_error = litellm.InternalServerError("x", llm_provider="openai", model="m")
    assert error_kind(raised(server_error, httpx.ConnectError("refused"))) is ErrorKind.CONNECTION
    assert error_kind(raised(RuntimeError("x"), httpx.ReadTimeout("slow"))) is ErrorKind.TIMEOUT
    rate = litellm.RateLimitError("x", llm_provider="openai", model="m")
    assert error_kind(raised(rate, httpx.ConnectError("refused"))) is ErrorKind.RATE_LIMIT
    assert error_kind(raised(RuntimeError("x"), ValueError("y"))) is ErrorKind.UNKNOWN


def test_status_code_of() -> None:
    assert status_code_of(litellm.RateLimitError("x", llm_provider="openai", model="m")) == 429
    assert status_code_of(RuntimeError()) is None


def test_error_spans_record_duration_metric_with_error_type(instrumented: Any) -> None:
    planted = litellm.RateLimitError("x", llm_provider="openai", model="gpt-4o-mini")
    with pytest.raises(litellm.RateLimitError):
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response=planted)
    points = instrumented.metric_points(sc.METRIC_OPERATION_DURATION)
    assert len(points) == 1
    assert points[0].attributes[sc.ERROR_TYPE] == "RateLimitError"
    assert points[0].count == 1


def test_exception_message_not_on_span_in_metadata_mode(instrumented: Any) -> None:
    """The message may echo the prompt; in the default (metadata) mode it never reaches the exporter."""
    planted = litellm.BadRequestError("prompt was: SECRET-PROMPT-TEXT", model="gpt-4o-mini", llm_provider="openai")
    with pytest.raises(litellm.BadRequestError):
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response=planted)
    span = instrumented.one_llm_span()
    dumped = repr(dict(span.attributes)) + repr([dict(e.attributes or {}) for e in span.events])
    assert "SECRET-PROMPT-TEXT" not in dumped
    assert "SECRET-PROMPT-TEXT" not in (span.status.description or "")
