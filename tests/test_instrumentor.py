"""The instrumentor: what is traced, the span contract, one span per logical call, pass-through after uninstrument."""

from __future__ import annotations

import asyncio
import importlib.metadata
from typing import Any

import litellm
import pytest
import wrapt
from litellm.integrations.custom_logger import CustomLogger
from opentelemetry.trace import SpanKind, StatusCode

from leanllm_otel import CallOptions, LeanLLMContext, LeanLLMInstrumentor, use_call_options, use_context
from leanllm_otel import semconv as sc

MESSAGES = [{"role": "user", "content": "hello there"}]


def _chat(server: Any, model: str = "openai/gpt-4o-mini", **kwargs: Any) -> Any:
    return litellm.completion(
        model=model, messages=MESSAGES, api_base=server.base_url, api_key="sk-test", **kwargs
    )


# --- what is traced ------------------------------------------------------------------------------------------


def test_completion_over_http_has_the_full_span_contract(instrumented: Any, openai_server: Any) -> None:
    response = _chat(
        openai_server,
        temperature=0.25,
        top_p=0.5,
        max_tokens=64,
        seed=7,
        stop=["END"],
        frequency_penalty=0.1,
        presence_penalty=0.2,
        extra_headers={"X-Mock-Behaviour": "cached-3 reasoning-2"},
    )
    span = instrumented.one_llm_span()
    attrs = dict(span.attributes)
    port = int(openai_server.base_url.rsplit(":", 1)[1].split("/")[0])

    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert attrs[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"  # without LiteLLM's "openai/" routing prefix
    assert attrs[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[sc.SERVER_PORT] == port
    assert attrs[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.25
    assert attrs[sc.GEN_AI_REQUEST_TOP_P] == 0.5
    assert attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert attrs[sc.GEN_AI_REQUEST_SEED] == 7
    assert list(attrs[sc.GEN_AI_REQUEST_STOP_SEQUENCES]) == ["END"]
    assert attrs[sc.GEN_AI_REQUEST_FREQUENCY_PENALTY] == 0.1
    assert attrs[sc.GEN_AI_REQUEST_PRESENCE_PENALTY] == 0.2

    assert attrs[sc.GEN_AI_RESPONSE_ID] == response.id
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == response.model
    assert isinstance(attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS], tuple)
    assert list(attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS]) == ["stop"]
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == response.usage.prompt_tokens
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == response.usage.completion_tokens
    assert attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 3
    assert attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 2
    assert attrs[sc.LEANLLM_USAGE_REPORTED] is True
    # Cost comes from LiteLLM's own price map: the same number LiteLLM reports for the response.
    assert attrs[sc.LEANLLM_COST_USD] == pytest.approx(litellm.completion_cost(completion_response=response))
    assert attrs[sc.LEANLLM_COST_USD] > 0
    assert attrs[sc.LEANLLM_LATENCY_MS] > 0
    assert attrs[sc.LEANLLM_STREAM] is False
    assert len(openai_server.requests_to("/chat/completions")) == 1


def test_start_attributes_are_visible_to_samplers(make_instrumented: Any, openai_server: Any) -> None:
    """What a head sampler sees at span start: operation, provider, model, server, request parameters."""
    from opentelemetry.sdk.trace.sampling import Decision, StaticSampler

    seen: list[dict[str, Any]] = []

    class Spy(StaticSampler):
        def should_sample(self, parent_context: Any, trace_id: int, name: str, kind: Any = None,
                          attributes: Any = None, links: Any = None, trace_state: Any = None) -> Any:
            seen.append(dict(attributes or {}))
            return super().should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    make_instrumented(sampler=Spy(Decision.RECORD_AND_SAMPLE))
    _chat(openai_server, temperature=0.5)
    llm = [a for a in seen if sc.LEANLLM_REQUEST_ID in a]
    assert len(llm) == 1
    start = llm[0]
    assert start[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert start[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert start[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert start[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert start[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.5
    assert sc.GEN_AI_RESPONSE_ID not in start


def test_leanllm_fields_from_call_options_and_context(make_instrumented: Any) -> None:
    inst = make_instrumented(environment="config-env")
    with use_context(LeanLLMContext(labels={"team": "search"}, user_id="u1")), use_call_options(
        CallOptions(
            request_id="req-123", correlation_id="corr-9", parent_request_id="req-122", labels={"feature": "f1"}
        )
    ):
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="hi")
    attrs = dict(inst.one_llm_span().attributes)
    assert attrs[sc.LEANLLM_REQUEST_ID] == "req-123"
    assert attrs[sc.LEANLLM_CORRELATION_ID] == "corr-9"
    assert attrs[sc.LEANLLM_PARENT_REQUEST_ID] == "req-122"
    assert attrs[sc.LEANLLM_LABEL_PREFIX + "team"] == "search"
    assert attrs[sc.LEANLLM_LABEL_PREFIX + "feature"] == "f1"
    assert attrs[sc.LEANLLM_ENVIRONMENT] == "config-env"
    assert attrs[sc.LEANLLM_USER_ID] == "u1"


def test_request_id_is_unique_per_call(instrumented: Any) -> None:
    for _ in range(3):
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="hi")
    ids = {s.attributes[sc.LEANLLM_REQUEST_ID] for s in instrumented.llm_spans()}
    assert len(ids) == 3


@pytest.mark.parametrize(
    ("call", "operation", "path"),
    [
        (lambda url: litellm.text_completion(model="openai/gpt-3.5-turbo-instruct", prompt="say hi",
                                             api_base=url, api_key="sk-test"), "text_completion", "/completions"),
        (lambda url: litellm.embedding(model="openai/text-embedding-3-small", input=["a", "b"],
                                       api_base=url, api_key="sk-test"), "embeddings", "/embeddings"),
        (lambda url: litellm.responses(model="openai/gpt-4o-mini", input="hi there",
                                       api_base=url, api_key="sk-test"), "chat", "/responses"),
    ],
    ids=["text_completion", "embedding", "responses"],
)
def test_sync_operations_are_traced(instrumented: Any, openai_server: Any, call: Any, operation: str,
                                    path: str) -> None:
    call(openai_server.base_url)
    span = instrumented.one_llm_span()
    assert span.attributes[sc.GEN_AI_OPERATION_NAME] == operation
    assert span.name == f"{operation} {span.attributes[sc.GEN_AI_REQUEST_MODEL]}"
    assert "/" not in span.attributes[sc.GEN_AI_REQUEST_MODEL]
    assert span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert span.status.status_code is StatusCode.UNSET
    assert len(openai_server.requests_to(path)) == 1


@pytest.mark.parametrize(
    ("call", "operation", "path"),
    [
        (lambda url: litellm.acompletion(model="openai/gpt-4o-mini", messages=MESSAGES,
                                         api_base=url, api_key="sk-test"), "chat", "/chat/completions"),
        (lambda url: litellm.atext_completion(model="openai/gpt-3.5-turbo-instruct", prompt="say hi",
                                              api_base=url, api_key="sk-test"), "text_completion", "/completions"),
        (lambda url: litellm.aembedding(model="openai/text-embedding-3-small", input=["a", "b"],
                                        api_base=url, api_key="sk-test"), "embeddings", "/embeddings"),
        (lambda url: litellm.aresponses(model="openai/gpt-4o-mini", input="hi there",
                                        api_base=url, api_key="sk-test"), "chat", "/responses"),
    ],
    ids=["acompletion", "atext_completion", "aembedding", "aresponses"],
)
async def test_async_operations_are_traced_once(instrumented: Any, openai_server: Any, call: Any,
                                                operation: str, path: str) -> None:
    """Async parity; ``acompletion`` runs ``completion`` internally, and that must not add a second span."""
    await call(openai_server.base_url)
    span = instrumented.one_llm_span()
    assert span.attributes[sc.GEN_AI_OPERATION_NAME] == operation
    assert span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] > 0
    assert span.status.status_code is StatusCode.UNSET
    assert len(openai_server.requests_to(path)) == 1
    assert len(instrumented.all_llm_spans()) == 1


def test_reference_taken_before_instrument_is_traced(make_instrumented: Any) -> None:
    from litellm import acompletion as early_acompletion
    from litellm import completion as early_completion

    assert not isinstance(early_completion, wrapt.FunctionWrapper)
    inst = make_instrumented()
    early_completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="hi")
    assert inst.one_llm_span().attributes[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    inst.clear()
    asyncio.run(early_acompletion(model="gpt-4o-mini", messages=MESSAGES, mock_response="hi"))
    assert len(inst.llm_spans()) == 1


def test_uninstrument_restores_originals_and_held_wrappers_pass_through(make_instrumented: Any) -> None:
    original = litellm.completion
    original_router = litellm.Router.completion
    inst = make_instrumented()
    held = litellm.completion
    assert held is not original
    assert isinstance(held, wrapt.FunctionWrapper)
    inst.instrumentor.uninstrument()
    assert litellm.completion is original
    assert litellm.Router.completion is original_router
    result = held(model="gpt-4o-mini", messages=MESSAGES, mock_response="still works")
    original(model="gpt-4o-mini", messages=MESSAGES, mock_response="still works")
    assert result.choices[0].message.content == "still works"
    assert inst.all_llm_spans() == []
    # A later instrument() must not revive the held wrapper into a second span per call.
    inst2 = make_instrumented()
    held(model="gpt-4o-mini", messages=MESSAGES, mock_response="x")
    assert len(inst2.all_llm_spans()) == 1


def test_fresh_instrumentor_object_can_uninstrument(make_instrumented: Any) -> None:
    """``LeanLLMInstrumentor()`` is a singleton; a second construction must not forget what the first patched."""
    original = litellm.completion
    inst = make_instrumented()
    LeanLLMInstrumentor().uninstrument()
    assert litellm.completion is original
    litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="x")
    assert inst.all_llm_spans() == []


def test_providers_passed_to_instrument_are_honoured(instrumented: Any) -> None:
    from opentelemetry import trace

    global_spans_before = trace.get_tracer_provider()
    litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="hi")
    assert len(instrumented.llm_spans()) == 1
    assert instrumented.metric_points(sc.METRIC_OPERATION_DURATION)
    assert trace.get_tracer_provider() is global_spans_before  # the instrumentor never installs a provider


def test_entry_point_loads_the_instrumentor() -> None:
    eps = [ep for ep in importlib.metadata.entry_points(group="opentelemetry_instrumentor") if ep.name == "leanllm"]
    assert len(eps) == 1
    assert eps[0].load() is LeanLLMInstrumentor


def test_log_false_is_pure_pass_through(instrumented: Any) -> None:
    with use_call_options(CallOptions(log=False)):
        result = litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="hi")
    with use_context(log=False):
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="hi")
    assert result.choices[0].message.content == "hi"
    assert instrumented.all_llm_spans() == []
    assert instrumented.metric_points(sc.METRIC_OPERATION_DURATION) == []


# --- parenting -----------------------------------------------------------------------------------------------


def test_span_is_child_of_callers_span_and_never_writes_on_it(instrumented: Any) -> None:
    with instrumented.tracer.start_as_current_span("handler") as parent:
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="hi")
    llm = instrumented.one_llm_span()
    handler = next(s for s in instrumented.spans() if s.name == "handler")
    assert llm.parent is not None
    assert llm.parent.span_id == parent.get_span_context().span_id
    assert llm.context.trace_id == parent.get_span_context().trace_id
    assert not any(k.startswith(("gen_ai.", "leanllm.")) for k in handler.attributes or {})
    assert handler.status.status_code is StatusCode.UNSET


class _SpanInPreCallHook(CustomLogger):
    """Starts a span inside LiteLLM's pre-call hook, i.e. where the HTTP request is about to be made."""

    def __init__(self, tracer: Any) -> None:
        super().__init__()
        self.tracer = tracer
        self.calls = 0

    def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        self.calls += 1
        with self.tracer.start_as_current_span("pre-call"):
            pass


def test_llm_span_is_current_during_the_call_sync(instrumented: Any, openai_server: Any) -> None:
    hook = _SpanInPreCallHook(instrumented.tracer)
    litellm.callbacks = [hook]
    _chat(openai_server)
    llm = instrumented.one_llm_span()
    inner = [s for s in instrumented.spans() if s.name == "pre-call"]
    assert hook.calls == 1 and len(inner) == 1
    assert inner[0].parent is not None and inner[0].parent.span_id == llm.context.span_id


async def test_llm_span_is_current_during_the_call_async(instrumented: Any, openai_server: Any) -> None:
    hook = _SpanInPreCallHook(instrumented.tracer)
    litellm.callbacks = [hook]
    await litellm.acompletion(model="openai/gpt-4o-mini", messages=MESSAGES, api_base=openai_server.base_url,
                              api_key="sk-test")
    llm = instrumented.one_llm_span()
    inner = [s for s in instrumented.spans() if s.name == "pre-call"]
    assert len(inner) == 1
    assert inner[0].parent is not None and inner[0].parent.span_id == llm.context.span_id


@pytest.fixture
def httpx_spans(instrumented: Any) -> Any:
    httpx_instrumentation = pytest.importorskip("opentelemetry.instrumentation.httpx")
    instrumentor = httpx_instrumentation.HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=instrumented.provider)
    try:
        yield instrumented
    finally:
        instrumentor.uninstrument()


def _http_children(inst: Any) -> tuple[Any, list[Any]]:
    llm = inst.one_llm_span()
    http = [s for s in inst.spans() if s is not llm and s.kind is SpanKind.CLIENT and
            sc.LEANLLM_REQUEST_ID not in (s.attributes or {})]
    return llm, http


def test_httpx_client_spans_nest_under_the_llm_span(httpx_spans: Any, openai_server: Any) -> None:
    _chat(openai_server)
    llm, http = _http_children(httpx_spans)
    assert len(http) == 1
    assert http[0].parent.span_id == llm.context.span_id


async def test_httpx_client_spans_nest_under_the_llm_span_async(
    httpx_spans: Any, openai_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LiteLLM's async clients default to its aiohttp transport, which the httpx instrumentation cannot see.
    monkeypatch.setattr(litellm, "disable_aiohttp_transport", True)
    litellm.in_memory_llm_clients_cache.flush_cache()
    try:
        await litellm.acompletion(model="openai/gpt-4o-mini", messages=MESSAGES, api_base=openai_server.base_url,
                                  api_key="sk-test")
    finally:
        litellm.in_memory_llm_clients_cache.flush_cache()  # later tests get LiteLLM's default clients again
    llm, http = _http_children(httpx_spans)
    assert len(http) == 1
    assert http[0].parent.span_id == llm.context.span_id


# --- exactly one LLM span per logical call --------------------------------------------------------------------


def test_completion_with_retries_is_one_span(instrumented: Any, openai_server: Any) -> None:
    with pytest.raises(litellm.InternalServerError):
        litellm.completion_with_retries(
            model="openai/err-500", messages=MESSAGES, api_base=openai_server.base_url, api_key="sk-test",
            num_retries=2, max_retries=0,
        )
    assert len(openai_server.requests_to("/chat/completions")) == 2  # tenacity's stop_after_attempt(num_retries)
    span = instrumented.one_llm_span()
    assert span.status.status_code is StatusCode.ERROR
    assert len(instrumented.all_llm_spans()) == 1


def test_num_retries_is_one_span(instrumented: Any, openai_server: Any) -> None:
    with pytest.raises(litellm.InternalServerError):
        _chat(openai_server, model="openai/err-500", num_retries=2, max_retries=0)
    assert len(openai_server.requests_to("/chat/completions")) >= 2
    assert len(instrumented.all_llm_spans()) == 1


def test_fallbacks_kwarg_is_one_span(instrumented: Any, openai_server: Any) -> None:
    response = _chat(openai_server, model="openai/err-500", max_retries=0,
                     fallbacks=[{"model": "openai/gpt-4o-mini", "api_base": openai_server.base_url,
                                 "api_key": "sk-test"}])
    assert response.choices[0].message.content.startswith("echo")
    assert len(openai_server.requests_to("/chat/completions")) == 2
    span = instrumented.one_llm_span()
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini"


def _router(server: Any) -> litellm.Router:
    return litellm.Router(
        model_list=[
            {"model_name": "primary", "litellm_params": {"model": "openai/err-500", "api_base": server.base_url,
                                                         "api_key": "sk-test", "max_retries": 0}},
            {"model_name": "backup", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": server.base_url,
                                                        "api_key": "sk-test", "max_retries": 0}},
        ],
        fallbacks=[{"primary": ["backup"]}],
        num_retries=0,
    )


def test_router_with_fallback_after_500_is_one_span(instrumented: Any, openai_server: Any) -> None:
    router = _router(openai_server)
    response = router.completion(model="primary", messages=MESSAGES)
    assert response.choices[0].message.content.startswith("echo")
    assert len(openai_server.requests_to("/chat/completions")) == 2
    assert len(instrumented.all_llm_spans()) == 1
    assert instrumented.one_llm_span().status.status_code is StatusCode.UNSET


async def test_router_async_with_fallback_after_500_is_one_span(instrumented: Any, openai_server: Any) -> None:
    router = _router(openai_server)
    response = await router.acompletion(model="primary", messages=MESSAGES)
    assert response.choices[0].message.content.startswith("echo")
    assert len(openai_server.requests_to("/chat/completions")) == 2
    assert len(instrumented.all_llm_spans()) == 1


def test_router_plain_call_is_one_span(instrumented: Any, openai_server: Any) -> None:
    router = _router(openai_server)
    router.completion(model="backup", messages=MESSAGES)
    router.embedding(model="backup", input=["x"])
    ops = sorted(s.attributes[sc.GEN_AI_OPERATION_NAME] for s in instrumented.all_llm_spans())
    assert ops == ["chat", "embeddings"]


class _ReentrantHandler(CustomLogger):
    """A custom handler that itself calls LiteLLM from inside the traced call."""

    def __init__(self) -> None:
        super().__init__()
        self.inner_results: list[Any] = []
        self.entered = False

    def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        if not self.entered:  # set before the inner call: its own pre-call hook must not recurse
            self.entered = True
            self.inner_results.append(
                litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="inner")
            )


def test_reentrant_call_inside_a_custom_handler_does_not_duplicate(instrumented: Any, openai_server: Any) -> None:
    handler = _ReentrantHandler()
    litellm.callbacks = [handler]
    _chat(openai_server)
    assert handler.inner_results and handler.inner_results[0].choices[0].message.content == "inner"
    spans = instrumented.all_llm_spans()
    assert len(spans) == 1
    assert spans[0].attributes[sc.SERVER_ADDRESS] == "127.0.0.1"  # the outer call's span, not the inner one's


def test_concurrent_async_calls_each_get_their_own_span(instrumented: Any) -> None:
    async def main() -> None:
        await asyncio.gather(*(
            litellm.acompletion(model="gpt-4o-mini", messages=MESSAGES, mock_response=f"r{i}") for i in range(5)
        ))

    asyncio.run(main())
    assert len(instrumented.all_llm_spans()) == 5


# --- credentials are never recorded ---------------------------------------------------------------------------

MARKER = "PLANTEDSECRET9f3a"


def _everything_exported(inst: Any) -> str:
    """Every attribute, event, status and link of every span, exported or not, as one string."""
    parts: list[str] = []
    for span in [*inst.spans(), *inst.unfiltered.get_finished_spans()]:
        parts.append(span.name)
        parts.append(repr(dict(span.attributes or {})))
        parts.append(repr(span.status.description))
        parts.extend(repr((e.name, dict(e.attributes or {}))) for e in span.events)
    for name in (sc.METRIC_OPERATION_DURATION, sc.METRIC_TOKEN_USAGE):
        parts.extend(repr(dict(p.attributes)) for p in inst.metric_points(name))
    return "\n".join(parts)


@pytest.mark.parametrize(
    "settings",
    [{}, {"capture_content": True}, {"capture_content": True, "explicit_redaction_mode": "full"}],
    ids=["metadata", "redacted", "full"],
)
async def test_credentials_never_reach_any_span(make_instrumented: Any, openai_server: Any,
                                                settings: dict[str, Any]) -> None:
    from leanllm_otel import RedactionMode

    if "explicit_redaction_mode" in settings:
        settings = {**settings, "explicit_redaction_mode": RedactionMode.parse(settings["explicit_redaction_mode"])}
    inst = make_instrumented(**settings)
    host = openai_server.base_url.split("://", 1)[1]
    secret_kwargs = {
        "api_key": f"sk-{MARKER}",
        "extra_headers": {"Authorization": f"Bearer {MARKER}", "X-Api-Key": MARKER},
        "client_secret": MARKER,
        "aws_secret_access_key": MARKER,
        "password": MARKER,
    }
    # user-info in api_base
    litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, api_base=f"http://user:{MARKER}@{host}",
                       **secret_kwargs)
    await litellm.acompletion(model="openai/gpt-4o-mini", messages=MESSAGES, api_base=openai_server.base_url,
                              stream=False, **secret_kwargs)
    list(litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, api_base=openai_server.base_url,
                            stream=True, **secret_kwargs))
    litellm.embedding(model="openai/text-embedding-3-small", input=["x"], api_base=openai_server.base_url,
                      **secret_kwargs)
    # a key in the api_base query string (the OpenAI SDK then builds a URL the server cannot route: an error)
    with pytest.raises(litellm.APIError.__mro__[1]):  # any openai.APIError subclass LiteLLM maps it to
        litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, max_retries=0,
                           api_base=f"{openai_server.base_url}?key={MARKER}", **secret_kwargs)
    # an authentication failure, where providers like to echo what they were sent
    with pytest.raises(litellm.AuthenticationError):
        litellm.completion(model="openai/err-401", messages=MESSAGES, api_base=openai_server.base_url,
                           max_retries=0, **secret_kwargs)
    assert MARKER in repr([r.headers for r in openai_server.requests])  # the secrets really were sent
    assert len(inst.all_llm_spans()) == 6
    dumped = _everything_exported(inst)
    assert sc.SERVER_ADDRESS in dumped  # the dump covers the attributes
    assert MARKER not in dumped


# --- fail-open --------------------------------------------------------------------------------------------------


def _broken(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("telemetry bug")


def test_telemetry_bug_is_logged_and_swallowed_in_production(
    instrumented: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from leanllm_otel.instrumentation import invocation

    monkeypatch.setenv("LEANLLM_INTERNAL_ERRORS", "log")
    monkeypatch.setattr(invocation, "response_attributes", _broken)
    with caplog.at_level("ERROR", logger="leanllm_otel"):
        result = litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="unchanged")
    assert result.choices[0].message.content == "unchanged"
    assert "leanllm-otel internal error" in caplog.text
    assert "telemetry bug" in caplog.text
    # The span still ended, without the response fields.
    (span,) = instrumented.all_llm_spans()
    assert sc.GEN_AI_RESPONSE_ID not in span.attributes


async def test_telemetry_bug_at_span_start_passes_the_call_through(
    instrumented: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from leanllm_otel.instrumentation import invocation

    monkeypatch.setenv("LEANLLM_INTERNAL_ERRORS", "log")
    monkeypatch.setattr(invocation, "request_attributes", _broken)
    with caplog.at_level("ERROR", logger="leanllm_otel"):
        result = litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="sync ok")
        aresult = await litellm.acompletion(model="gpt-4o-mini", messages=MESSAGES, mock_response="async ok")
    assert result.choices[0].message.content == "sync ok"
    assert aresult.choices[0].message.content == "async ok"
    assert caplog.text.count("leanllm-otel internal error") >= 2
    assert instrumented.all_llm_spans() == []


def test_telemetry_bug_in_a_stream_never_breaks_iteration(
    instrumented: Any, openai_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leanllm_otel.instrumentation import streams

    monkeypatch.setenv("LEANLLM_INTERNAL_ERRORS", "log")
    monkeypatch.setattr(streams, "usage_attributes", _broken)
    chunks = list(litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, stream=True,
                                     api_base=openai_server.base_url, api_key="sk-test"))
    assert chunks
    (span,) = instrumented.all_llm_spans()
    assert span.attributes[sc.LEANLLM_STREAM_OUTCOME] == sc.STREAM_COMPLETED


def test_telemetry_bug_surfaces_under_pytest_by_default(instrumented: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from leanllm_otel.instrumentation import invocation

    monkeypatch.delenv("LEANLLM_INTERNAL_ERRORS", raising=False)
    monkeypatch.setattr(invocation, "response_attributes", _broken)
    with pytest.raises(RuntimeError, match="telemetry bug"):
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="x")


def test_scrub_removes_every_kind_of_credential_value() -> None:
    from leanllm_otel.instrumentation.credentials import scrub

    kwargs = {
        "api_key": "sk-aaaa1111",
        "api_base": "https://bob:pw-2222@example.test/v1?api-version=2024&sig=qqqq3333",
        "extra_headers": {"Authorization": "Bearer tok-4444", "X-Trace": "keep-me"},
        "vertex_credentials": "cred-5555",
        "temperature": 0.5,
        "model": "gpt-4o-mini",
    }
    text = ("key sk-aaaa1111 rejected at https://bob:pw-2222@example.test/v1?api-version=2024&sig=qqqq3333 "
            "with tok-4444 and cred-5555; trace keep-me, model gpt-4o-mini")
    cleaned = scrub(text, kwargs)
    # Every extra_headers value goes, whatever the header's name (issue 19: "X-Tenant-Ref" carried a credential).
    for secret in ("sk-aaaa1111", "pw-2222", "qqqq3333", "tok-4444", "cred-5555", "keep-me"):
        assert secret not in cleaned
    assert "trace" in cleaned and "gpt-4o-mini" in cleaned


def test_event_ids_are_unique_across_fork() -> None:
    """A forked worker must not replay its parent's id sequence (ids are the store's idempotency key)."""
    import os

    from leanllm_otel.instrumentation.invocation import new_event_id

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its next id and leave without running any exit handler
        os.write(write_end, new_event_id().encode())
        os._exit(0)
    os.close(write_end)
    parent_id = new_event_id()
    os.waitpid(pid, 0)
    child_id = os.read(read_end, 100).decode()
    os.close(read_end)
    assert len(child_id) == 36 and child_id != parent_id
