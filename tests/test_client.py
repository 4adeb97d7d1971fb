"""The LeanLLM client beyond the seed examples: wiring, hooks' data, ring buffer, events API, module-level API,
async, and concurrency (threads and asyncio tasks sharing one client)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import litellm
import pytest
from opentelemetry import trace as trace_api

import leanllm_otel
from leanllm_otel import LeanLLM, LeanLLMConfig, LeanLLMContext, trace, use_context
from leanllm_otel.client import ClientClosedError, PersistenceUnavailableError
from leanllm_otel.context import reset_chain
from leanllm_otel.instrumentation.instrumentor import LeanLLMInstrumentor
from test_client_support import MODEL, aask, ask, clean_env_fixture, make_client_fixture  # noqa: F401 - fixtures


def _instrumented() -> bool:
    return bool(LeanLLMInstrumentor().is_instrumented_by_opentelemetry)


# --- hooks' data -------------------------------------------------------------------------------------------------


def test_snapshot_is_a_deep_copy_without_secrets(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    snapshots: list[dict[str, Any]] = []

    def tamper(snapshot: dict[str, Any]) -> None:
        snapshots.append(snapshot)
        snapshot["messages"][0]["content"] = "tampered"
        snapshot["kwargs"]["temperature"] = 2.0

    client = make_client(pre_call_hook=tamper)
    messages = [{"role": "user", "content": "original"}]
    client.chat(MODEL, messages, {"team": "a"}, api_base=openai_server.base_url.replace("http://", "http://u:pw@"),
                temperature=0.5, extra_headers={"X-Secret": "s3"}, api_key="sk-secret-per-call",
                request_id="rid-1", correlation_id="cid-1")
    body = openai_server.last_request.body
    assert body["messages"] == [{"role": "user", "content": "original"}] and body["temperature"] == 0.5
    assert messages == [{"role": "user", "content": "original"}]
    snapshot = snapshots[0]
    assert (snapshot["model"], snapshot["labels"], snapshot["request_id"], snapshot["correlation_id"]) == (
        MODEL, {"team": "a"}, "rid-1", "cid-1")
    text = repr(snapshot)
    assert "sk-secret-per-call" not in text and "s3" not in text and "pw@" not in text and "sk-test" not in text
    assert snapshot["kwargs"]["api_base"].startswith("http://127.0.0.1:")


def test_post_call_hook_event_matches_the_stored_event(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    posted: list[Any] = []
    client = make_client(post_call_hook=posted.append)
    ask(client, openai_server, labels={"k": "v"}, request_id="evt-1")
    stored = client.get_event("evt-1")
    assert stored is not None and len(posted) == 1
    hooked = posted[0]
    for name in ("event_id", "model", "input_tokens", "output_tokens", "labels", "trace_id", "span_id", "status"):
        assert getattr(hooked, name) == getattr(stored, name), name


def test_ambient_log_false_is_a_bypass(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    calls: list[str] = []
    client = make_client(pre_call_hook=lambda s: calls.append("pre"))
    with use_context(log=False):
        ask(client, openai_server)
    assert calls == [] and client.last_event is None


def test_last_event_renders_content_in_the_configured_form(
    make_client: Callable[..., LeanLLM], openai_server: Any
) -> None:
    client = make_client(capture_content=True)  # redacted by default when capture is on
    ask(client, openai_server, "mail me at jane.doe@example.com")
    event = client.last_event
    assert event is not None and event.redaction_mode == "redacted"
    text = str(event.input_messages)
    assert "jane.doe@example.com" not in text and "[PII:EMAIL]" in text
    stored = client.get_event(event.event_id)
    assert stored is not None and stored.input_messages == event.input_messages


# --- ring buffer ---------------------------------------------------------------------------------------------------


def test_recent_events_is_a_ring_buffer(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    client = make_client(last_event_buffer=3)
    ids = []
    for i in range(5):
        ask(client, openai_server, f"m{i}", request_id=f"id-{i}")
        ids.append(f"id-{i}")
    assert [e.event_id for e in client.recent_events()] == ids[-3:]
    assert [e.event_id for e in client.recent_events(2)] == ids[-2:]
    assert client.recent_events(0) == []
    assert client.last_event is not None and client.last_event.event_id == "id-4"


# --- async ------------------------------------------------------------------------------------------------------------


async def test_async_chat_stream_and_events_api(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    posted: list[Any] = []
    client = make_client(post_call_hook=posted.append)
    response = await aask(client, openai_server, labels={"mode": "async"})
    assert response.choices[0].message.content == "echo: Say hi."
    stream = await client.achat(MODEL, [{"role": "user", "content": "s"}], api_base=openai_server.base_url,
                                stream=True)
    assert isinstance(stream, litellm.CustomStreamWrapper)
    assert len(posted) == 1
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
    assert text.startswith("echo: s")
    assert len(posted) == 2 and posted[1].stream and posted[1].time_to_first_token_ms is not None
    completion = await client.acompletion(MODEL, "prompt", api_base=openai_server.base_url)
    assert completion.choices[0].message.content == "echo: prompt"
    assert await client.acount_events() == 3
    assert await client.acount_events(labels={"mode": "async"}) == 1
    listed = await client.alist_events(limit=2)
    assert len(listed) == 2
    fetched = await client.aget_event(posted[0].event_id)
    assert fetched is not None and fetched.labels == {"mode": "async"}


def test_embed(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    client = make_client()
    response = client.embed("openai/text-embedding-3-small", ["a", "b"], {"kind": "emb"},
                            api_base=openai_server.base_url)
    assert len(response.data) == 2
    event = client.last_event
    assert event is not None and event.operation == "embeddings" and event.labels == {"kind": "emb"}


async def test_aembed(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    client = make_client()
    response = await client.aembed("openai/text-embedding-3-small", "a", api_base=openai_server.base_url)
    assert len(response.data) == 1
    assert client.last_event is not None and client.last_event.operation == "embeddings"


# --- events API errors --------------------------------------------------------------------------------------------


def test_events_api_needs_the_sql_store(make_client: Callable[..., LeanLLM]) -> None:
    no_store = make_client(database_url=None)
    with pytest.raises(PersistenceUnavailableError, match="database_url"):
        no_store.list_events()
    off = make_client(enable_persistence=False)
    with pytest.raises(PersistenceUnavailableError, match="persistence is off"):
        off.get_event("x")
    remote = make_client(database_url=None, leanllm_api_key="lllm_x", endpoint="http://127.0.0.1:9")
    with pytest.raises(PersistenceUnavailableError, match="LeanLLM service"):
        remote.count_events()


async def test_async_events_api_needs_the_sql_store(make_client: Callable[..., LeanLLM]) -> None:
    client = make_client(database_url=None)
    with pytest.raises(PersistenceUnavailableError):
        await client.acount_events()


# --- wiring: one pipeline per process -------------------------------------------------------------------------


def test_clients_share_one_pipeline_and_the_last_close_shuts_it_down(
    make_client: Callable[..., LeanLLM], openai_server: Any
) -> None:
    first = make_client()
    second = make_client(sampling_rate=0.0)  # its own behaviour settings, the first one's pipeline
    assert first.pipeline is second.pipeline and _instrumented()
    ask(first, openai_server)
    ask(second, openai_server)
    assert first.last_event is not None and second.last_event is None  # second samples everything out
    assert len(first.recent_events()) == 1  # a client sees only its own calls
    first.close()
    assert _instrumented()
    ask(second, openai_server, sample=1.0)
    assert second.last_event is not None
    second.close()
    assert not _instrumented()
    with pytest.raises(ClientClosedError):
        ask(second, openai_server)


def test_reuses_an_application_pipeline_and_leaves_it_running(
    make_client: Callable[..., LeanLLM], openai_server: Any, sqlite_url: str
) -> None:
    pipeline = leanllm_otel.configure(LeanLLMConfig(database_url=sqlite_url))
    try:
        client = make_client(config=LeanLLMConfig(database_url=sqlite_url))
        assert client.pipeline is pipeline
        ask(client, openai_server)
        assert client.count_events() == 1
        client.close()
        assert _instrumented()  # the application's pipeline is the application's to shut down
    finally:
        pipeline.shutdown()
    assert not _instrumented()


def test_works_with_a_bare_instrumentor(
    make_client: Callable[..., LeanLLM], make_instrumented: Callable[..., Any], openai_server: Any
) -> None:
    inst = make_instrumented()
    client = make_client(database_url=None)
    assert client.pipeline is None
    ask(client, openai_server, request_id="bare-1")
    assert client.last_event is not None and client.last_event.event_id == "bare-1"
    assert [s.attributes["leanllm.request_id"] for s in inst.llm_spans()] == ["bare-1"]
    client.close()
    assert _instrumented()  # the instrumentor is the fixture's


def test_context_manager_closes(make_client: Callable[..., LeanLLM], openai_server: Any, sqlite_url: str) -> None:
    with LeanLLM(api_key="sk-test", config=LeanLLMConfig(database_url=sqlite_url)) as client:
        ask(client, openai_server)
        assert client.events_in_flight == 1
    assert client.closed and not _instrumented()
    from leanllm_otel.store import EventStore

    with EventStore(sqlite_url) as store:  # close() flushed
        assert store.count_events() == 1


# --- module-level API ---------------------------------------------------------------------------------------------


def test_module_level_init_chat_completion_shutdown(
    make_client: Callable[..., LeanLLM], openai_server: Any, sqlite_url: str
) -> None:
    client = leanllm_otel.init(api_key="sk-test", config=LeanLLMConfig(database_url=sqlite_url))
    assert leanllm_otel.chat(MODEL, [{"role": "user", "content": "x"}], api_base=openai_server.base_url
                             ).choices[0].message.content == "echo: x"
    assert leanllm_otel.completion(MODEL, "y", api_base=openai_server.base_url).choices[0].message.content == "echo: y"
    assert len(client.recent_events()) == 2
    leanllm_otel.shutdown()
    assert client.closed and not _instrumented()
    leanllm_otel.shutdown()  # idempotent


def test_init_is_thread_safe(make_client: Callable[..., LeanLLM], sqlite_url: str) -> None:
    config = LeanLLMConfig(database_url=sqlite_url)
    barrier = threading.Barrier(8)
    made: list[LeanLLM] = []

    def run() -> None:
        barrier.wait(timeout=10)
        made.append(leanllm_otel.init(api_key="sk-test", config=config))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(made) == 8
    assert sum(not c.closed for c in made) == 1
    current = leanllm_otel.client.get_client()
    assert not current.closed and current in made
    leanllm_otel.shutdown()
    assert all(c.closed for c in made) and not _instrumented()


# --- auto-chain -------------------------------------------------------------------------------------------------


def test_auto_chain_resets_per_trace_and_never_crosses_requests(
    make_client: Callable[..., LeanLLM], openai_server: Any
) -> None:
    client = make_client(auto_chain=True, last_event_buffer=64)
    with trace():
        ask(client, openai_server, request_id="a1")
        ask(client, openai_server, request_id="a2")
    with trace():
        ask(client, openai_server, request_id="b1")
    tracer = trace_api.get_tracer("tests")

    def handle(request: int) -> None:  # a web handler: one server span per request, on a reused worker thread
        with tracer.start_as_current_span(f"request {request}"):
            ask(client, openai_server, request_id=f"r{request}-1")
            ask(client, openai_server, request_id=f"r{request}-2")

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(handle, range(6)))
    parents = {e.event_id: e.parent_request_id for e in client.recent_events()}
    assert parents["a1"] is None and parents["a2"] == "a1" and parents["b1"] is None
    for request in range(6):
        assert parents[f"r{request}-1"] is None
        assert parents[f"r{request}-2"] == f"r{request}-1"
    reset_chain()


def test_auto_chain_of_a_client_whose_pipeline_does_not_chain(
    make_client: Callable[..., LeanLLM], openai_server: Any
) -> None:
    make_client()  # builds the pipeline, auto_chain off
    chained = make_client(auto_chain=True)
    with trace():
        ask(chained, openai_server, request_id="c1")
        ask(chained, openai_server, request_id="c2")
    assert chained.last_event is not None and chained.last_event.parent_request_id == "c1"


# --- concurrency -----------------------------------------------------------------------------------------------


def test_sixteen_threads_keep_contexts_chains_and_ring_buffer(
    make_client: Callable[..., LeanLLM], openai_server: Any
) -> None:
    calls_per_thread = 4
    seen: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    def pre(snapshot: dict[str, Any]) -> None:
        with lock:
            seen[snapshot["request_id"]] = snapshot

    client = make_client(auto_chain=True, last_event_buffer=256, pre_call_hook=pre)

    def worker(index: int) -> list[str]:
        ids = []
        with trace(correlation_id=f"thread-{index}"), use_context(LeanLLMContext(user_id=f"user-{index}")):
            for call in range(calls_per_thread):
                rid = f"t{index}-{call}"
                ask(client, openai_server, f"{index}/{call}", labels={"thread": str(index)}, request_id=rid)
                ids.append(rid)
        return ids

    with ThreadPoolExecutor(max_workers=16) as pool:
        per_thread = list(pool.map(worker, range(16)))
    events = {e.event_id: e for e in client.recent_events()}
    assert len(events) == 16 * calls_per_thread
    for index, ids in enumerate(per_thread):
        for position, rid in enumerate(ids):
            event = events[rid]
            assert event.correlation_id == f"thread-{index}" and event.labels == {"thread": str(index)}
            assert event.metadata["user_id"] == f"user-{index}"
            assert event.parent_request_id == (ids[position - 1] if position else None)
            assert seen[rid]["labels"] == {"thread": str(index)}
    assert client.count_events() == 16 * calls_per_thread


async def test_five_hundred_tasks_keep_contexts_chains_and_ring_buffer(
    make_client: Callable[..., LeanLLM], openai_server: Any
) -> None:
    client = make_client(auto_chain=True, last_event_buffer=100)
    tasks = 500

    async def task(index: int) -> tuple[str, str]:
        with trace(correlation_id=f"task-{index}"):
            await aask(client, openai_server, f"first {index}", labels={"task": str(index)}, request_id=f"{index}-a")
            await aask(client, openai_server, f"second {index}", labels={"task": str(index)}, request_id=f"{index}-b")
        return f"{index}-a", f"{index}-b"

    results = await asyncio.wait_for(asyncio.gather(*(task(i) for i in range(tasks))), timeout=240)
    assert len(results) == tasks
    buffered = client.recent_events()
    assert len(buffered) == 100 and len({e.event_id for e in buffered}) == 100
    stored = await client.alist_events(limit=2 * tasks)
    assert len(stored) == 2 * tasks
    by_id = {e.event_id: e for e in stored}
    for index in range(tasks):
        first, second = by_id[f"{index}-a"], by_id[f"{index}-b"]
        assert first.parent_request_id is None and second.parent_request_id == f"{index}-a"
        assert first.correlation_id == second.correlation_id == f"task-{index}"
        assert second.labels == {"task": str(index)}
    for event in buffered:
        assert by_id[event.event_id].labels == event.labels
