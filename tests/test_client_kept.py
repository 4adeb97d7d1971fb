"""The client keeps what the front processor keeps (issue 15 item 1), finds each call's end by the call itself
(not its request id alone), and hears each drop counter once."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Callable
from typing import Any

import litellm
import pytest

import leanllm_otel
from leanllm_otel import LeanLLM, LeanLLMConfig
from leanllm_otel.instrumentation.instrumentor import LeanLLMInstrumentor
from leanllm_otel.processing import processor as processor_module
from leanllm_otel.processing.sampling import Keep
from leanllm_otel.settings import TelemetrySettings
from leanllm_otel.store import EventStore
from test_client_support import ask, clean_env_fixture, make_client_fixture  # noqa: F401 - fixtures


def _who(event: Any) -> str:
    return str(event.labels.get("who", ""))


def test_ring_buffer_and_hooks_follow_the_processors_decision(
    make_client: Callable[..., LeanLLM], openai_server: Any, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = processor_module.span_decision

    def processor_drops_label_drop(span: Any, default_rate: float) -> Keep | None:
        if (span.attributes or {}).get("leanllm.label.who") == "drop":
            return Keep.SAMPLED_OUT  # what sampling.decide alone would keep: only the processor says otherwise
        return original(span, default_rate)

    monkeypatch.setattr(processor_module, "span_decision", processor_drops_label_drop)
    posted: list[Any] = []
    client = make_client(post_call_hook=posted.append)
    ask(client, openai_server, labels={"who": "keep"}, request_id="keep-1")
    ask(client, openai_server, labels={"who": "drop"}, request_id="drop-1")
    assert client.last_event is not None and client.last_event.event_id == "keep-1"
    assert [e.event_id for e in posted] == ["keep-1"]
    assert client.get_event("drop-1") is None
    assert client.flush()
    with EventStore(sqlite_url) as store:
        assert [_who(e) for e in store.list_events(limit=10)] == ["keep"]


def test_a_kept_error_reaches_the_ring_with_the_processors_span(
    make_client: Callable[..., LeanLLM], openai_server: Any
) -> None:
    errors: list[BaseException] = []
    client = make_client(sampling_rate=0.0, error_hook=lambda exc, snapshot: errors.append(exc))
    with pytest.raises(litellm.InternalServerError):
        client.chat("openai/err-500", [{"role": "user", "content": "x"}], api_base=openai_server.base_url,
                    request_id="err-1", max_retries=0)
    event = client.last_event
    assert event is not None and event.event_id == "err-1" and event.status == "error"
    assert len(errors) == 1


def test_two_clients_with_one_request_id_at_once_each_get_only_their_own_call(
    make_client: Callable[..., LeanLLM], openai_server: Any
) -> None:
    both_in_flight = threading.Barrier(2)

    def wait_for_the_other(snapshot: Any) -> None:
        both_in_flight.wait(timeout=30)  # each call is registered before its pre-call hook runs

    posted: dict[str, list[Any]] = {"a": [], "b": []}
    clients = {
        name: make_client(pre_call_hook=wait_for_the_other, post_call_hook=posted[name].append) for name in ("a", "b")
    }
    failures: list[BaseException] = []

    def call(name: str) -> None:
        try:
            ask(clients[name], openai_server, labels={"who": name}, request_id="shared-id")
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=call, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    for name, client in clients.items():
        assert [_who(e) for e in posted[name]] == [name]
        assert client.last_event is not None and _who(client.last_event) == name
        assert [_who(e) for e in client.recent_events()] == [name]
        assert not client._pending  # nothing of the other client's call stayed behind


def test_reattaching_to_the_same_pipeline_hears_each_drop_once(
    make_client: Callable[..., LeanLLM], openai_server: Any, sqlite_url: str
) -> None:
    config = LeanLLMConfig(database_url=sqlite_url)
    pipeline = leanllm_otel.configure(config)
    try:
        heard: list[tuple[int, str]] = []
        client = make_client(config=config, on_dropped_events=lambda count, reason: heard.append((count, reason)))
        ask(client, openai_server)
        instrumentor = LeanLLMInstrumentor()  # LiteLLM re-instrumented onto the same pipeline: the client re-attaches
        instrumentor.uninstrument()
        instrumentor.instrument(tracer_provider=pipeline.provider, settings=TelemetrySettings.from_config(config))
        ask(client, openai_server, request_id="after")
        assert client.pipeline is pipeline and client.last_event is not None
        assert client.last_event.event_id == "after"
        pipeline.drops.add(2, "queue_full")
        assert heard == [(2, "queue_full")]
        client.close()
        pipeline.drops.add(1, "queue_full")
        assert heard == [(2, "queue_full")]
    finally:
        pipeline.shutdown()


def test_a_closed_client_is_held_by_neither_the_drop_counter_nor_the_processor(
    clean_env: None, openai_server: Any, sqlite_url: str
) -> None:
    config = LeanLLMConfig(database_url=sqlite_url)
    pipeline = leanllm_otel.configure(config)
    try:
        client = LeanLLM(api_key="sk-test", config=config, on_dropped_events=lambda count, reason: None)
        ask(client, openai_server)
        client.close()
        ref = weakref.ref(client)
        del client
        gc.collect()
        assert ref() is None
    finally:
        pipeline.shutdown()



def test_without_a_leanllm_processor_the_client_applies_the_one_span_decision(
    make_client: Callable[..., LeanLLM], make_instrumented: Callable[..., Any], openai_server: Any
) -> None:
    make_instrumented()  # the application's own provider: no pipeline, no configurator processor
    client = make_client(database_url=None)
    assert client.pipeline is None
    ask(client, openai_server, request_id="kept-1")
    ask(client, openai_server, request_id="sampled-out", sample=0.0)
    assert client.last_event is not None and client.last_event.event_id == "kept-1"
    with pytest.raises(litellm.InternalServerError):
        client.chat("openai/err-500", [{"role": "user", "content": "x"}], api_base=openai_server.base_url,
                    request_id="err-1", sample=0.0, max_retries=0)
    assert [e.event_id for e in client.recent_events()] == ["kept-1", "err-1"]


def test_reports_whose_call_never_ended_are_bounded() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from leanllm_otel.client import kept

    tracer = TracerProvider().get_tracer("tests")
    held = kept.KeptSpans(lambda request_id: request_id == "mine")
    spans = []
    for _ in range(kept._MAX_HELD + 1):
        span = tracer.start_span("chat", attributes={"leanllm.request_id": "mine"})
        span.end()
        spans.append(span)
        held._on_kept(span, Keep.KEPT)  # type: ignore[arg-type]
    other = tracer.start_span("chat", attributes={"leanllm.request_id": "not mine"})
    other.end()
    held._on_kept(other, Keep.KEPT)  # type: ignore[arg-type]
    assert held.take(other) is None
    assert held.take(spans[0]) is None  # the oldest went
    assert held.take(spans[-1]) == (spans[-1], Keep.KEPT)
    assert held.take(spans[-1]) is None  # taken once


def test_two_open_streams_with_one_request_id_each_end_in_their_own_client(
    make_client: Callable[..., LeanLLM], openai_server: Any
) -> None:
    posted: dict[str, list[Any]] = {"a": [], "b": []}
    a = make_client(post_call_hook=posted["a"].append)
    b = make_client(post_call_hook=posted["b"].append)
    streams = {
        name: ask(client, openai_server, text=name, labels={"who": name}, request_id="shared-id", stream=True)
        for name, client in (("a", a), ("b", b))
    }
    for name in ("a", "b"):  # a ends while b's call with the same request id is still in flight
        assert "".join(chunk.choices[0].delta.content or "" for chunk in streams[name]).startswith(f"echo: {name}")
        assert [_who(e) for e in posted[name]] == [name]
    assert a.last_event is not None and _who(a.last_event) == "a" and a.last_event.stream
    assert b.last_event is not None and _who(b.last_event) == "b"
