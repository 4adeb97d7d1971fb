"""Every example and documented behaviour of the three LeanLLM reference documents (seeds 000, 001, 002),
adapted to ``leanllm_otel`` imports and run against the loopback OpenAI-compatible server.

Adaptations: ``api_base=openai_server.base_url`` is added to calls, the model is ``openai/gpt-4o-mini`` (the
event's model is ``gpt-4o-mini``, LiteLLM's routing prefix removed), and ``sqlite:///events.db`` lives in tmp.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any

import litellm
import pytest

from leanllm_otel import LeanLLM, LeanLLMConfig, LeanLLMContext, RedactionMode, trace, use_context
from leanllm_otel.config import ConfigError
from test_client_support import MODEL, ask, clean_env_fixture, make_client_fixture  # noqa: F401 - fixtures

# === seed 000: configuration ==================================================================================


def test_config_explicit_and_from_env(clean_env: None, monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    config = LeanLLMConfig(database_url=sqlite_url, capture_content=True, sampling_rate=0.1)
    assert (config.capture_content, config.sampling_rate) == (True, 0.1)
    monkeypatch.setenv("LEANLLM_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("LEANLLM_SAMPLING_RATE", "0.25")
    assert LeanLLMConfig.from_env().sampling_rate == 0.25


def test_client_without_config_reads_the_environment(
    make_client: Callable[..., LeanLLM], monkeypatch: pytest.MonkeyPatch, sqlite_url: str, openai_server: Any
) -> None:
    """"LeanLLMConfig.from_env() is also what runs implicitly when you call LeanLLM(api_key=...)"."""
    monkeypatch.setenv("LEANLLM_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("LEANLLM_ENVIRONMENT", "staging")
    client = LeanLLM(api_key="sk-test")
    try:
        assert client.config.database_url == sqlite_url
        ask(client, openai_server)
        assert client.last_event is not None and client.last_event.metadata["environment"] == "staging"
        assert client.count_events() == 1
    finally:
        client.close()


def test_database_url_and_api_key_together_raise_at_startup(clean_env: None, monkeypatch: pytest.MonkeyPatch,
                                                            sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="mutually exclusive"):
        LeanLLMConfig(database_url=sqlite_url, leanllm_api_key="lllm_x")
    monkeypatch.setenv("LEANLLM_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("LEANLLM_API_KEY", "lllm_x")
    with pytest.raises(ConfigError):
        LeanLLM(api_key="sk-test")


def test_no_persistence_events_still_flow_through_last_event(
    make_client: Callable[..., LeanLLM], openai_server: Any
) -> None:
    client = make_client(database_url=None)
    ask(client, openai_server)
    ask(client, openai_server, "again")
    assert client.last_event is not None and client.last_event.model == "gpt-4o-mini"
    assert len(client.recent_events()) == 2
    assert client.pipeline is not None and client.pipeline.exporters == ()


def test_enable_persistence_false_skips_the_queue(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    client = make_client(enable_persistence=False)
    ask(client, openai_server)
    assert client.pipeline is not None and client.pipeline.exporters == ()
    assert client.events_in_flight == 0
    assert client.last_event is not None


def test_queue_overflow_drops_are_counted(
    make_client: Callable[..., LeanLLM], openai_server: Any, sqlite_url: str
) -> None:
    """queue_max_size: "Overflow drops oldest events (counted in dropped_events_count)"."""
    drops: list[tuple[int, str]] = []
    client = make_client(queue_max_size=2, batch_size=1, on_dropped_events=lambda count, reason: drops.append(
        (count, reason)))
    assert client.count_events() == 0  # creates the schema
    # Lock the database so the export worker blocks on its first write while the calls keep coming.
    blocker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        for i in range(10):
            ask(client, openai_server, f"q{i}")
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    client.flush()
    stored = client.count_events()
    assert client.dropped_events_count >= 1
    assert stored + client.dropped_events_count == 10
    assert sum(count for count, _ in drops) == client.dropped_events_count


def test_environment_is_mirrored_into_metadata(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    client = make_client(environment="prod")
    ask(client, openai_server)
    event = client.get_event(client.last_event.event_id)  # type: ignore[union-attr]
    assert event is not None and event.metadata["environment"] == "prod" and event.environment == "prod"


def test_last_event_buffer_zero_disables(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    client = make_client(last_event_buffer=0)
    ask(client, openai_server)
    assert client.last_event is None and client.recent_events() == []
    assert client.count_events() == 1  # still persisted


def test_auto_chain_links_to_the_previous_event(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    client = make_client(auto_chain=True)
    with trace():
        ask(client, openai_server, "one")
        first = client.last_event
        ask(client, openai_server, "two")
        second = client.last_event
    assert first is not None and second is not None
    assert first.parent_request_id is None
    assert second.parent_request_id == first.event_id


def test_precedence_per_call_over_context_over_config(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    """"client.chat(..., redaction_mode=RedactionMode.HASHED) overrides any ambient LeanLLMContext and the global
    config.redaction_mode"."""
    client = make_client(capture_content=True, redaction_mode="full", environment="config-env")
    with use_context(redaction_mode=RedactionMode.REDACTED, environment="ctx-env", correlation_id="ctx-cid"):
        ask(client, openai_server, "a")
        in_context = client.last_event
        ask(client, openai_server, "b", redaction_mode=RedactionMode.HASHED, correlation_id="call-cid",
            context=LeanLLMContext(environment="call-env"))
        per_call = client.last_event
    ask(client, openai_server, "c")
    config_only = client.last_event
    assert in_context is not None and per_call is not None and config_only is not None
    assert (in_context.redaction_mode, in_context.environment, in_context.correlation_id) == (
        "redacted", "ctx-env", "ctx-cid")
    assert (per_call.redaction_mode, per_call.environment, per_call.correlation_id) == (
        "hashed", "call-env", "call-cid")
    assert (config_only.redaction_mode, config_only.environment, config_only.correlation_id) == (
        "full", "config-env", None)
    stored = client.get_event(per_call.event_id)
    assert stored is not None
    text = str(stored.input_messages)
    assert "hmac-sha256:" in text and "b" not in re.sub(r"hmac-sha256:[0-9a-f]+", "", text).replace("user", "")


# === seed 001: request interception ===========================================================================


def test_basic_call(
    make_client: Callable[..., LeanLLM], openai_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_client()
    response = client.chat(
        model=MODEL,
        messages=[{"role": "user", "content": "Say hi."}],
        labels={"feature": "demo"},
        api_base=openai_server.base_url,
    )
    print(response.choices[0].message.content)
    assert capsys.readouterr().out == "echo: Say hi.\n"
    assert isinstance(response, litellm.ModelResponse)
    event = client.get_event(client.last_event.event_id)  # type: ignore[union-attr]
    assert event is not None
    assert event.labels == {"feature": "demo"} and event.model == "gpt-4o-mini" and event.status == "ok"
    assert event.input_tokens is not None and event.output_tokens is not None and event.cost is not None
    assert event.latency_ms is not None and event.latency_ms > 0


def test_streaming_with_time_to_first_token(
    make_client: Callable[..., LeanLLM], openai_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    posted: list[Any] = []
    client = make_client(post_call_hook=posted.append, capture_content=True, redaction_mode="full")
    stream = client.chat(
        model="openai/chunks-5-gap-5",
        messages=[{"role": "user", "content": "Stream a haiku."}],
        stream=True,
        api_base=openai_server.base_url,
    )
    assert isinstance(stream, litellm.CustomStreamWrapper)  # LiteLLM's own stream type
    assert posted == [] and client.last_event is None  # "Streaming events are emitted on stream close"
    for chunk in stream:
        print(chunk.choices[0].delta.content or "", end="", flush=True)
    assert capsys.readouterr().out.startswith("echo: Stream a haiku.")
    assert len(posted) == 1
    event = client.get_event(posted[0].event_id)
    assert event is not None and event.stream
    assert event.time_to_first_token_ms is not None and event.total_stream_time_ms is not None
    assert 0 < event.time_to_first_token_ms <= event.total_stream_time_ms
    # "content is aggregated across chunks"
    assert event.output_messages[0]["parts"][0]["content"].startswith("echo: Stream a haiku.")


def test_capturing_errors_as_events(
    make_client: Callable[..., LeanLLM], capsys: pytest.CaptureFixture[str]
) -> None:
    def on_error(exc: BaseException, snapshot: dict[str, Any]) -> None:
        print("LLM call failed:", snapshot["model"], type(exc).__name__)

    client = make_client(error_hook=on_error, sampling_rate=0.0)
    with pytest.raises(litellm.BadRequestError):
        client.chat(model="invalid/model", messages=[{"role": "user", "content": "x"}])
    # (LiteLLM prints its own provider-list hint to stdout first)
    assert capsys.readouterr().out.endswith("LLM call failed: invalid/model BadRequestError\n")
    # "An event with error_kind set is in the queue, regardless of sampling."
    assert client.events_in_flight == 1
    events = client.list_events(errors_only=True)
    assert len(events) == 1 and events[0].error_kind == "bad_request" and events[0].status == "error"


def test_hooks_signature(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    calls: list[str] = []
    client = make_client(
        pre_call_hook=lambda snapshot: calls.append("pre"),
        post_call_hook=lambda event: calls.append("post"),
        error_hook=lambda exc, snapshot: calls.append("error"),
        on_dropped_events=lambda count, reason: calls.append("dropped"),
    )
    ask(client, openai_server)
    with pytest.raises(litellm.RateLimitError):
        client.chat("openai/err-429", [{"role": "user", "content": "x"}], api_base=openai_server.base_url,
                    max_retries=0)
    assert calls == ["pre", "post", "pre", "error"]


def test_hooks_must_not_raise_into_the_caller(make_client: Callable[..., LeanLLM], openai_server: Any,
                                              caplog: pytest.LogCaptureFixture) -> None:
    def boom(*args: Any) -> None:
        raise RuntimeError("hook bug")

    client = make_client(pre_call_hook=boom, post_call_hook=boom, error_hook=boom)
    assert ask(client, openai_server).choices[0].message.content == "echo: Say hi."
    with pytest.raises(litellm.RateLimitError):  # LiteLLM's exception, not the hook's
        client.chat("openai/err-429", [{"role": "user", "content": "x"}], api_base=openai_server.base_url,
                    max_retries=0)
    assert sum("hook bug" in (r.exc_text or "") or "raised" in r.getMessage() for r in caplog.records) >= 3


def test_stream_error_mid_stream_emits_an_error_event(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    errors: list[BaseException] = []
    client = make_client(error_hook=lambda exc, snapshot: errors.append(exc))
    stream = client.chat("openai/break-2", [{"role": "user", "content": "x"}], stream=True,
                         api_base=openai_server.base_url)
    with pytest.raises(Exception):  # noqa: B017 - whatever LiteLLM raises for a broken connection
        for _ in stream:
            pass
    assert len(errors) == 1
    assert client.last_event is not None and client.last_event.status == "error"


def test_api_key_is_the_provider_key(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    client = make_client(api_key="sk-provider-1")
    ask(client, openai_server)
    assert openai_server.last_request.headers.get("authorization") == "Bearer sk-provider-1"
    ask(client, openai_server, api_key="sk-per-call")
    assert openai_server.last_request.headers.get("authorization") == "Bearer sk-per-call"
    event = client.get_event(client.last_event.event_id)  # type: ignore[union-attr]
    assert event is not None and "sk-per-call" not in event.model_dump_json()


def test_completion_takes_a_prompt(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    client = make_client()
    response = client.completion(MODEL, "Complete me", {"feature": "complete"}, api_base=openai_server.base_url)
    assert response.choices[0].message.content == "echo: Complete me"
    assert openai_server.last_request.body["messages"] == [{"role": "user", "content": "Complete me"}]
    assert client.last_event is not None and client.last_event.labels == {"feature": "complete"}


# === seed 002: runtime toggles and sampling ===================================================================


def test_hard_bypass_for_a_health_check(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    calls: list[str] = []
    client = make_client(pre_call_hook=lambda s: calls.append("pre"), post_call_hook=lambda e: calls.append("post"))
    response = client.chat(
        model=MODEL,
        messages=[{"role": "user", "content": "ping"}],
        log=False,
        api_base=openai_server.base_url,
    )
    assert response.choices[0].message.content == "echo: ping"  # pure pass-through
    assert calls == [] and client.last_event is None and client.recent_events() == []
    assert client.count_events() == 0
    assert client.pipeline is not None and client.pipeline.counters["kept"] == 0


def test_sample_globally_force_keep_one(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    client = make_client(sampling_rate=0.1)
    stream_of_prompts = [f"prompt {i}" for i in range(40)]
    for prompt in stream_of_prompts:
        client.chat(model=MODEL, messages=[{"role": "user", "content": prompt}], api_base=openai_server.base_url)
    client.chat(
        model=MODEL,
        messages=[{"role": "user", "content": "evaluation case 42"}],
        sample=1.0,
        labels={"eval": "case-42"},
        api_base=openai_server.base_url,
    )
    assert client.count_events(labels={"eval": "case-42"}) == 1  # "This one always lands"
    kept = client.count_events()
    assert 1 <= kept < 30  # about 10% of 40, plus the forced one
    assert len(client.recent_events()) == kept  # the ring buffer holds exactly what was kept


def test_per_call_redaction_override(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    client = make_client()  # config default: metadata
    client.chat(
        model=MODEL,
        messages=[{"role": "user", "content": "internal system prompt"}],
        redaction_mode=RedactionMode.FULL,
        api_base=openai_server.base_url,
    )
    full = client.get_event(client.last_event.event_id)  # type: ignore[union-attr]
    ask(client, openai_server, "secret sauce")
    metadata = client.get_event(client.last_event.event_id)  # type: ignore[union-attr]
    assert full is not None and metadata is not None
    assert full.input_messages[0]["parts"][0]["content"] == "internal system prompt"
    assert metadata.input_messages is None and "secret sauce" not in metadata.model_dump_json()


def test_debug_mode_prints_one_summary_per_event(
    make_client: Callable[..., LeanLLM], openai_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_client(debug=True)
    client.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}], api_base=openai_server.base_url)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[")]
    assert len(lines) == 1
    assert re.fullmatch(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] gpt-4o-mini tokens=\d+/\d+ cost=\$\d+\.\d{4} "
                        r"latency=\d+ms", lines[0]), lines[0]
    import logging

    assert logging.getLogger("leanllm_otel").level == logging.DEBUG
    logging.getLogger("leanllm_otel").setLevel(logging.NOTSET)


def test_pre_call_hook_fires_on_sampled_out_calls(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    pre: list[str] = []
    post: list[str] = []
    client = make_client(sampling_rate=0.0, pre_call_hook=lambda s: pre.append(s["request_id"]),
                         post_call_hook=lambda e: post.append(e.event_id))
    ask(client, openai_server)
    assert len(pre) == 1 and post == [] and client.last_event is None
    assert client.count_events() == 0


def test_errors_bypass_sampling_and_error_hook_always_fires(
    make_client: Callable[..., LeanLLM], openai_server: Any
) -> None:
    errors: list[str] = []
    client = make_client(sampling_rate=0.0, error_hook=lambda exc, s: errors.append(s["request_id"]))
    for _ in range(3):
        with pytest.raises(litellm.InternalServerError):
            client.chat("openai/err-500", [{"role": "user", "content": "x"}], api_base=openai_server.base_url,
                        max_retries=0, sample=0.0)
    assert len(errors) == 3
    assert client.count_events(errors_only=True) == 3
    assert [e.event_id for e in client.recent_events()] == errors


def test_auto_chain_does_not_advance_on_sampled_out_events(
    make_client: Callable[..., LeanLLM], openai_server: Any
) -> None:
    """Better than the seed's documented gap: a parent is always an event that was emitted."""
    client = make_client(auto_chain=True)
    with trace():
        ask(client, openai_server, "kept")
        kept = client.last_event
        ask(client, openai_server, "dropped", sample=0.0)
        ask(client, openai_server, "next")
        after = client.last_event
    assert kept is not None and after is not None and after is not kept
    assert after.parent_request_id == kept.event_id
    assert client.count_events() == 2
    assert client.get_event(after.parent_request_id) is not None  # the parent was persisted


def test_precedence_applies_to_tracing_ids(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    client = make_client()
    with use_context(correlation_id="ambient", parent_request_id="ambient-parent"):
        ask(client, openai_server, request_id="my-id", correlation_id="mine", parent_request_id="my-parent")
    event = client.last_event
    assert event is not None
    assert (event.event_id, event.correlation_id, event.parent_request_id) == ("my-id", "mine", "my-parent")
