"""Replay of stored events: requests rebuilt from stored content, comparison, refusals, batch and CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from leanllm_otel import LeanLLM, RedactionMode
from leanllm_otel.cli import main
from leanllm_otel.replay import NotReplayableError, replay_batch, replay_event, replay_request
from test_client_support import MODEL, ask, clean_env_fixture, make_client_fixture  # noqa: F401 - fixtures


def _stored(client: LeanLLM) -> Any:
    event = client.get_event(client.last_event.event_id)  # type: ignore[union-attr]
    assert event is not None
    return event


def test_replay_rebuilds_the_request_and_compares(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    client = make_client(capture_content=True, redaction_mode="full")
    client.chat(MODEL, [{"role": "system", "content": "be terse"}, {"role": "user", "content": "hello there"}],
                api_base=openai_server.base_url)
    event = _stored(client)
    request = replay_request(event, temperature=0.0, max_tokens=16)
    assert request.model == "openai/gpt-4o-mini"
    assert request.messages == [{"role": "system", "content": "be terse"}, {"role": "user", "content": "hello there"}]
    assert request.parameters == {"temperature": 0.0, "max_tokens": 16}
    openai_server.clear()
    result = replay_event(event, temperature=0.0, litellm_kwargs={"api_base": openai_server.base_url,
                                                                   "api_key": "sk-test"})
    assert openai_server.last_request.body["temperature"] == 0.0
    assert result.error is None and result.identical is True and result.diff == "" and result.similarity == 1.0
    assert result.text == "echo: hello there" and result.token_delta == 0 and result.cost_delta == 0.0
    changed = event.model_copy(update={"output_messages": [{"role": "assistant", "parts": [
        {"type": "text", "content": "something else"}]}]})
    other = replay_event(changed, litellm_kwargs={"api_base": openai_server.base_url, "api_key": "sk-test"})
    assert other.identical is False and "-something else" in other.diff and "+echo: hello there" in other.diff


def test_replay_with_a_model_override_and_a_failing_provider(
    make_client: Callable[..., LeanLLM], openai_server: Any
) -> None:
    client = make_client(capture_content=True, redaction_mode="full")
    ask(client, openai_server, "x")
    result = replay_event(_stored(client), model="openai/err-500",
                          litellm_kwargs={"api_base": openai_server.base_url, "api_key": "sk-test", "max_retries": 0})
    assert result.model == "openai/err-500" and result.error is not None and "InternalServerError" in result.error
    assert openai_server.last_request.model == "err-500"


@pytest.mark.parametrize("mode", ["metadata", "hashed"])
def test_refuses_events_without_replayable_content(
    make_client: Callable[..., LeanLLM], openai_server: Any, mode: str
) -> None:
    client = make_client(capture_content=True, redaction_mode=mode)
    ask(client, openai_server, "x")
    with pytest.raises(NotReplayableError, match=f"'{mode}' mode"):
        replay_event(_stored(client))


def test_redacted_events_replay_marked_lossy(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    client = make_client(capture_content=True, redaction_mode="redacted")
    ask(client, openai_server, "mail jane.doe@example.com")
    result = replay_event(_stored(client), litellm_kwargs={"api_base": openai_server.base_url, "api_key": "sk-test"})
    assert result.lossy and result.error is None
    assert "jane.doe@example.com" not in json.dumps(openai_server.last_request.body)


def test_replay_through_a_client_is_an_event(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    client = make_client(capture_content=True, redaction_mode="full")
    ask(client, openai_server, "again")
    original = _stored(client)
    result = replay_event(original, client=client, litellm_kwargs={"api_base": openai_server.base_url})
    assert result.replay_event_id is not None and result.replay_event_id != original.event_id
    replayed = client.get_event(result.replay_event_id)
    assert replayed is not None and replayed.labels == {"replay_of": original.event_id}


def test_batch_replay_skips_what_cannot_be_replayed(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    client = make_client(capture_content=True, redaction_mode="full")
    ask(client, openai_server, "one", labels={"suite": "s"})
    ask(client, openai_server, "two", labels={"suite": "s"}, redaction_mode=RedactionMode.METADATA)
    ask(client, openai_server, "three", labels={"suite": "s"})
    summary = replay_batch(client.list_events(labels={"suite": "s"}),
                           litellm_kwargs={"api_base": openai_server.base_url, "api_key": "sk-test"})
    assert (summary.replayed, summary.identical, summary.skipped, summary.failed) == (2, 2, 1, 0)
    assert summary.to_dict()["token_delta"] == 0


def test_cli_replay(make_client: Callable[..., LeanLLM], openai_server: Any, sqlite_url: str,
                    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client(capture_content=True, redaction_mode="full")
    ask(client, openai_server, "cli", labels={"suite": "cli"})
    replayable = client.last_event.event_id  # type: ignore[union-attr]
    ask(client, openai_server, "meta", labels={"suite": "cli"}, redaction_mode=RedactionMode.METADATA)
    metadata_only = client.last_event.event_id  # type: ignore[union-attr]
    client.close()
    monkeypatch.setenv("REPLAY_KEY", "sk-test")
    common = ["--database-url", sqlite_url, "--api-base", openai_server.base_url, "--api-key-env", "REPLAY_KEY"]

    assert main(["replay", replayable, *common, "--model", MODEL]) == 0
    assert "identical" in capsys.readouterr().out

    assert main(["replay", metadata_only, *common]) == 1
    assert "cannot replay" in capsys.readouterr().err

    assert main(["replay", "--batch", "--filter", "label.suite=cli", *common, "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["summary"]["replayed"] == 1 and lines[-1]["summary"]["skipped"] == 1

    assert main(["replay", *common]) == 2  # neither an id nor --batch
    assert main(["replay", "--batch", "--filter", "colour=red", *common]) == 2
    assert main(["replay", "no-such-id", *common]) == 1
