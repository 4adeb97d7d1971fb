"""The test infrastructure itself, through real clients (httpx, LiteLLM, the OTLP exporter, asyncpg)."""

from __future__ import annotations

import base64
import json
import re
import struct
from typing import Any

import asyncpg
import httpx
import litellm
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from loopback.openai_server import embedding_for
from support import LeanLLMServiceServer, OpenAIServer, OTLPReceiver, PostgresServer, parse_behaviour
from support.litellm_behaviour import CONTENT_POLICY_400, FORBIDDEN_403

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello mock world"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city"],
            },
        },
    }
]


def sse_events(text: str) -> list[Any]:
    """The ``data:`` payloads of an SSE body (``[DONE]`` kept as a string)."""
    out: list[Any] = []
    for line in text.splitlines():
        if line.startswith("data: "):
            data = line[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


# -------------------------------------------------------------------------------------- OpenAI server


def test_behaviour_directives_parse_from_model_names() -> None:
    b = parse_behaviour("err-400-context")
    assert (b.error_status, b.error_kind) == (400, "context")
    b = parse_behaviour("chunks-50-gap-20-cached-7-reasoning-3", "slow-0.5")
    assert (b.chunks, b.gap, b.cached_tokens, b.reasoning_tokens, b.slow) == (50, 0.02, 7, 3, 0.5)
    assert parse_behaviour("tools").tool_calls == 1
    assert parse_behaviour("tools-2").tool_calls == 2
    assert parse_behaviour("gpt-4o-mini") == parse_behaviour()


def test_chat_json_shape_and_recording(openai_server: OpenAIServer) -> None:
    response = httpx.post(
        f"{openai_server.base_url}/chat/completions",
        json={"model": "cached-2-reasoning-4", "messages": MESSAGES},
        headers={"Authorization": "Bearer sk-test"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "cached-2-reasoning-4"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "echo: hello mock world", "refusal": None}
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 2
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 4
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] == 4 + 4  # 4 words of text + the reasoning tokens
    recorded = openai_server.last_request
    assert recorded.path == "/v1/chat/completions"
    assert recorded.headers["authorization"] == "Bearer sk-test"
    assert recorded.body["messages"] == MESSAGES
    assert openai_server.request_count == 1


def test_chat_stream_chunks_with_and_without_usage(openai_server: OpenAIServer) -> None:
    url = f"{openai_server.base_url}/chat/completions"
    with_usage = httpx.post(
        url,
        json={
            "model": "chunks-5",
            "messages": MESSAGES,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert with_usage.headers["content-type"].startswith("text/event-stream")
    events = sse_events(with_usage.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    content = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert content[0] == ""  # the role chunk
    assert len([c for c in content[1:] if c]) == 5
    assert "".join(c or "" for c in content) == "echo: hello mock world"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0

    without = sse_events(httpx.post(url, json={"model": "chunks-5", "messages": MESSAGES, "stream": True}).text)
    assert all("usage" not in c for c in without[:-1])
    assert without[-2]["choices"][0]["finish_reason"] == "stop"


def test_chat_stream_pads_text_to_the_chunk_count(openai_server: OpenAIServer) -> None:
    events = sse_events(
        httpx.post(
            f"{openai_server.base_url}/chat/completions",
            json={"model": "chunks-50", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        ).text
    )
    pieces = [e["choices"][0]["delta"].get("content") for e in events[:-1]]
    assert len([p for p in pieces if p]) == 50


def test_stream_break_closes_mid_body(openai_server: OpenAIServer) -> None:
    received: list[Any] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream(
            "POST",
            f"{openai_server.base_url}/chat/completions",
            json={"model": "break-3", "messages": MESSAGES, "stream": True},
        ) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("data: "):
                received.append(json.loads(line[6:]))
    assert len(received) == 1 + 3  # role chunk + 3 content chunks, no finish, no [DONE]


@pytest.mark.parametrize(
    ("model", "status", "code"),
    [
        ("err-400", 400, None),
        ("err-401", 401, "invalid_api_key"),
        ("err-403", 403, "unsupported_country_region_territory"),
        ("err-404", 404, "model_not_found"),
        ("err-429", 429, "rate_limit_exceeded"),
        ("err-500", 500, None),
        ("err-503", 503, None),
        ("err-400-context", 400, "context_length_exceeded"),
        ("err-400-policy", 400, "content_policy_violation"),
    ],
)
def test_error_models(openai_server: OpenAIServer, model: str, status: int, code: str | None) -> None:
    for stream in (False, True):
        response = httpx.post(
            f"{openai_server.base_url}/chat/completions",
            json={"model": model, "messages": MESSAGES, "stream": stream},
        )
        assert response.status_code == status
        error = response.json()["error"]
        assert error["code"] == code and error["message"]
        assert ("retry-after" in response.headers) == (status == 429)


def test_retry_after_directive_and_header_behaviour(openai_server: OpenAIServer) -> None:
    response = httpx.post(
        f"{openai_server.base_url}/chat/completions",
        json={"model": "gpt-4o-mini", "messages": MESSAGES},
        headers={"X-Mock-Behaviour": "err-429-ra-7"},
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"


def test_text_completion_and_embeddings_over_http(openai_server: OpenAIServer) -> None:
    text = httpx.post(f"{openai_server.base_url}/completions", json={"model": "m", "prompt": "say hi"}).json()
    assert text["object"] == "text_completion" and text["choices"][0]["text"] == "echo: say hi"
    stream = sse_events(
        httpx.post(
            f"{openai_server.base_url}/completions", json={"model": "chunks-4", "prompt": "x", "stream": True}
        ).text
    )
    assert "".join(e["choices"][0]["text"] for e in stream[:-1]) == "echo: x"

    emb = httpx.post(
        f"{openai_server.base_url}/embeddings",
        json={"model": "e", "input": ["a", "b"], "encoding_format": "base64"},
    ).json()
    assert [d["index"] for d in emb["data"]] == [0, 1]
    decoded = list(struct.unpack("<8f", base64.b64decode(emb["data"][1]["embedding"])))
    assert decoded == embedding_for("b", 8)


def test_slow_model_delays_the_answer(openai_server: OpenAIServer) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{openai_server.base_url}/chat/completions",
            json={"model": "slow-2", "messages": MESSAGES},
            timeout=0.3,
        )
    assert openai_server.request_count == 1


# ---------------------------------------------------------------------------------------- via LiteLLM


def test_litellm_completion(openai_server: OpenAIServer) -> None:
    response = litellm.completion(
        model="openai/gpt-4o-mini-cached-3",
        api_base=openai_server.base_url,
        api_key="sk-test",
        messages=MESSAGES,
    )
    assert response.choices[0].message.content == "echo: hello mock world"
    assert response.usage.prompt_tokens_details.cached_tokens == 3
    assert openai_server.last_request.body["model"] == "gpt-4o-mini-cached-3"


def test_litellm_stream_with_usage(openai_server: OpenAIServer) -> None:
    stream = litellm.completion(
        model="openai/chunks-6",
        api_base=openai_server.base_url,
        api_key="sk-test",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello mock world"
    assert openai_server.last_request.body["stream_options"] == {"include_usage": True}
    rebuilt = litellm.stream_chunk_builder(chunks, messages=MESSAGES)
    assert rebuilt.usage.total_tokens == rebuilt.usage.prompt_tokens + rebuilt.usage.completion_tokens > 0


def test_litellm_tool_calls_plain_and_streamed(openai_server: OpenAIServer) -> None:
    common: dict[str, Any] = {"api_base": openai_server.base_url, "api_key": "sk-test", "tools": TOOLS}
    response = litellm.completion(model="openai/tools", messages=MESSAGES, **common)
    call = response.choices[0].message.tool_calls[0]
    assert response.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "hello mock world", "days": 1}

    chunks = list(litellm.completion(model="openai/tools-2", messages=MESSAGES, stream=True, **common))
    calls = litellm.stream_chunk_builder(chunks).choices[0].message.tool_calls
    assert [c.id for c in calls] == ["call_0", "call_1"]
    assert all(json.loads(c.function.arguments)["days"] == 1 for c in calls)


def test_litellm_errors_map_to_litellm_exceptions(openai_server: OpenAIServer) -> None:
    common: dict[str, Any] = {"api_base": openai_server.base_url, "api_key": "sk-test", "max_retries": 0}
    cases = [
        ("openai/err-429", litellm.RateLimitError),
        ("openai/err-401", litellm.AuthenticationError),
        ("openai/err-500", litellm.InternalServerError),
        ("openai/err-400-context", litellm.ContextWindowExceededError),
        ("openai/err-400-policy", CONTENT_POLICY_400),  # which class depends on the OpenAI SDK: see the module
        ("openai/err-403", FORBIDDEN_403),
    ]
    for model, exc_type in cases:
        openai_server.clear()
        with pytest.raises(exc_type) as info:
            litellm.completion(model=model, messages=MESSAGES, **common)
        assert type(info.value) is exc_type
        assert openai_server.request_count == 1


def test_litellm_broken_stream_raises(openai_server: OpenAIServer) -> None:
    stream = litellm.completion(
        model="openai/break-3",
        api_base=openai_server.base_url,
        api_key="sk-test",
        messages=MESSAGES,
        stream=True,
    )
    seen: list[str] = []
    with pytest.raises(Exception) as info:
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content or "")
    # What LiteLLM wraps it in changes (1.108 with OpenAI SDK 3.x says only "Connection error."); the transport's
    # own error stays in the cause chain on every version.
    chain: list[BaseException] = []
    error: BaseException | None = info.value
    while error is not None and len(chain) < 10:
        chain.append(error)
        error = error.__cause__ or error.__context__
    transport = [e for e in chain if isinstance(e, httpx.RemoteProtocolError)]
    assert transport and re.search(r"incomplete chunked read|peer closed", str(transport[0])), chain
    assert "".join(seen) == "echo: hello mock world"[: len("".join(seen))] and len(seen) >= 3


async def test_litellm_async_embedding_and_text_completion(openai_server: OpenAIServer) -> None:
    emb = await litellm.aembedding(
        model="openai/text-embedding-3-small",
        api_base=openai_server.base_url,
        api_key="sk-test",
        input=["a", "b"],
    )
    assert [round(x, 6) for x in emb.data[0]["embedding"]] == [round(x, 6) for x in embedding_for("a", 8)]
    assert emb.usage.prompt_tokens == 2
    text = await litellm.atext_completion(
        model="openai/gpt-3.5-turbo-instruct",
        api_base=openai_server.base_url,
        api_key="sk-test",
        prompt="say hi",
    )
    assert text.choices[0].text == "echo: say hi"


def test_litellm_responses_api(openai_server: OpenAIServer) -> None:
    response = litellm.responses(
        model="openai/reasoning-2", api_base=openai_server.base_url, api_key="sk-test", input="hello there"
    )
    message = next(item for item in response.output if item.type == "message")
    assert response.output[0].type == "reasoning"  # reasoning-<n> also adds a reasoning item with a summary
    assert message.content[0].text == "echo: hello there"
    assert response.usage.output_tokens_details.reasoning_tokens == 2
    events = list(
        litellm.responses(
            model="openai/gpt-4o-mini",
            api_base=openai_server.base_url,
            api_key="sk-test",
            input="hi",
            stream=True,
        )
    )
    kinds = [str(getattr(e.type, "value", e.type)) for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert (
        "".join(e.delta for e in events if "output_text.delta" in str(getattr(e.type, "value", e.type))) == "echo: hi"
    )


# -------------------------------------------------------------------------------------- OTLP receiver


def _provider(receiver: OTLPReceiver, **exporter_kwargs: Any) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "support-test"}))
    exporter = OTLPSpanExporter(endpoint=receiver.traces_endpoint, timeout=5, **exporter_kwargs)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_otlp_exporter_spans_decode(otlp_receiver: OTLPReceiver, compression: Compression) -> None:
    provider = _provider(otlp_receiver, compression=compression)
    tracer = provider.get_tracer("support.test", "1.2.3")
    with (
        tracer.start_as_current_span("parent") as parent,
        tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as span,
    ):
        span.set_attributes(
            {
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 12,
                "leanllm.sampled": True,
                "leanllm.rate": 0.25,
                "gen_ai.response.finish_reasons": ["stop", "length"],
            }
        )
        span.add_event("first_token", {"leanllm.ttft_ms": 7})
        span.set_status(Status(StatusCode.ERROR, "boom"))
    provider.shutdown()

    spans = otlp_receiver.wait_for_spans(2, timeout=10)
    by_name = {s["name"]: s for s in spans}
    chat, root = by_name["chat gpt-4o-mini"], by_name["parent"]
    assert chat["attributes"] == {
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 12,
        "leanllm.sampled": True,
        "leanllm.rate": 0.25,
        "gen_ai.response.finish_reasons": ["stop", "length"],
    }
    assert chat["kind"] == "CLIENT" and root["kind"] == "INTERNAL"
    assert chat["trace_id"] == f"{parent.get_span_context().trace_id:032x}"
    assert chat["span_id"] == f"{span.get_span_context().span_id:016x}"
    assert chat["parent_span_id"] == root["span_id"] and root["parent_span_id"] is None
    assert chat["status"] == {"code": "ERROR", "message": "boom"}
    assert chat["events"][0]["name"] == "first_token" and chat["events"][0]["attributes"] == {"leanllm.ttft_ms": 7}
    assert chat["resource"]["service.name"] == "support-test"
    assert chat["scope"] == {"name": "support.test", "version": "1.2.3"}
    assert any(b"gpt-4o-mini" in body for body in otlp_receiver.raw_bodies)  # decompressed bodies
    assert otlp_receiver.exports[0].path == "/v1/traces"


def test_otlp_json_body_and_failure_injection(otlp_receiver: OTLPReceiver) -> None:
    payload = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "s"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "json-span",
                                "kind": 3,
                                "attributes": [{"key": "n", "value": {"intValue": "3"}}],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    otlp_receiver.fail_next(1, status=503)
    assert httpx.post(otlp_receiver.traces_endpoint, json=payload).status_code == 503
    assert otlp_receiver.spans == []
    assert httpx.post(otlp_receiver.traces_endpoint, json=payload).status_code == 200
    [span] = otlp_receiver.wait_for_spans(1, timeout=5)
    assert span["trace_id"] == "5b8efff798038103d269b633813fc60c" and span["span_id"] == "eee19b7ec3c1b174"
    assert span["kind"] == "CLIENT" and span["attributes"] == {"n": 3}
    assert httpx.post(f"{otlp_receiver.endpoint}/v1/metrics", content=b"\x01\x02").status_code == 200
    assert otlp_receiver.raw_bodies[-1] == b"\x01\x02"
    with pytest.raises(TimeoutError):
        otlp_receiver.wait_for_spans(2, timeout=0.2)


# ------------------------------------------------------------------------------------ LeanLLM service


def test_service_accepts_events_and_checks_the_key(leanllm_service: LeanLLMServiceServer) -> None:
    url = f"{leanllm_service.endpoint}/v1/events"
    events = [{"event_id": "e1", "model": "gpt-4o-mini"}, {"event_id": "e2", "model": "gpt-4o-mini"}]
    ok = httpx.post(url, json={"events": events}, headers={"Authorization": "Bearer lllm_test"})
    assert ok.status_code == 200 and ok.json() == {"accepted": 2, "dropped": 0}
    assert leanllm_service.wait_for_events(2, timeout=5) == events

    assert httpx.post(url, json={"events": events}, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.post(url, json={"nope": 1}, headers={"Authorization": "Bearer lllm_test"}).status_code == 400
    leanllm_service.fail_next(1, status=429, retry_after="2")
    limited = httpx.post(url, json={"events": events}, headers={"Authorization": "Bearer lllm_test"})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert len(leanllm_service.events) == 2
    assert [r.status for r in leanllm_service.requests] == [200, 401, 400, 429]
    assert leanllm_service.requests[0].json() == {"events": events}


def test_stop_cuts_keep_alive_connections(openai_server: OpenAIServer) -> None:
    with httpx.Client() as client:
        first = client.post(f"{openai_server.base_url}/chat/completions", json={"model": "m", "messages": MESSAGES})
        assert first.status_code == 200
        url = f"{openai_server.base_url}/chat/completions"
        openai_server.stop()
        with pytest.raises(httpx.TransportError):
            client.post(url, json={"model": "m", "messages": MESSAGES})
    assert openai_server.request_count == 1


# ----------------------------------------------------------------------------------------- PostgreSQL


async def test_postgres_roundtrip_and_restart(postgres_server: PostgresServer, postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url, timeout=10)
    try:
        await conn.execute("CREATE TABLE events (id text PRIMARY KEY, tokens int)")
        await conn.execute("INSERT INTO events VALUES ('a', 5), ('b', 7)")
        assert await conn.fetchval("SELECT sum(tokens) FROM events") == 12
    finally:
        await conn.close()

    postgres_server.stop()
    with pytest.raises((OSError, asyncpg.PostgresError)):
        await asyncpg.connect(postgres_url, timeout=2)
    postgres_server.start()

    conn = await asyncpg.connect(postgres_url, timeout=10)
    try:
        assert await conn.fetchval("SELECT count(*) FROM events") == 2
        await conn.execute("INSERT INTO events VALUES ('c', 1)")
    finally:
        await conn.close()

    postgres_server.stop(mode="immediate")  # a crash: committed rows must survive recovery
    postgres_server.start()
    conn = await asyncpg.connect(postgres_url, timeout=10)
    try:
        assert await conn.fetchval("SELECT count(*) FROM events") == 3
    finally:
        await conn.close()


async def test_postgres_url_is_a_fresh_database_and_password_url_works(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    conn = await asyncpg.connect(postgres_url, timeout=10)
    try:
        tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables == 0
    finally:
        await conn.close()
    default_url = postgres_server.url(with_password=True)
    assert ":leanllm-test-pw@" in default_url and default_url.endswith("/leanllm_test")
    conn = await asyncpg.connect(default_url, timeout=10)
    try:
        assert await conn.fetchval("SELECT current_database()") == "leanllm_test"
    finally:
        await conn.close()


def test_sqlite_url_points_into_tmp_path(sqlite_url: str, tmp_path: Any) -> None:
    assert sqlite_url == f"sqlite:///{tmp_path}/events.db"
