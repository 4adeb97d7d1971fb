"""Several LeanLLM clients in one process: each client's events reach exactly its own sinks (issue 18 item 1).

Stores are real (SQLite files, the suite's PostgreSQL server); every assertion reads what each store holds, by the
``who`` label, so a row in the wrong tenant's store fails the test.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import litellm
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import leanllm_otel
from leanllm_otel import LeanLLM, LeanLLMConfig
from leanllm_otel.config import ConfigError
from leanllm_otel.store import EventStore
from test_client_support import MODEL, aask, ask, clean_env_fixture, make_client_fixture  # noqa: F401 - fixtures

EMAIL = "write to jane.doe@example.com"


def _url(tmp_path: Path, name: str) -> str:
    return f"sqlite:///{tmp_path / name}"


def stored(url: str) -> list[str]:
    """The ``who`` labels of every event in the store at ``url``, sorted (an empty store, or none: [])."""
    with EventStore(url) as store:
        store.migrate()
        return sorted(event.labels.get("who", "") for event in store.list_events(limit=10_000))


def stored_events(url: str) -> list[Any]:
    with EventStore(url) as store:
        store.migrate()
        return store.list_events(limit=10_000)


def test_two_clients_each_store_holds_only_its_own_rows(
    make_client: Callable[..., LeanLLM], openai_server: Any, tmp_path: Path
) -> None:
    a_url, b_url = _url(tmp_path, "a.db"), _url(tmp_path, "b.db")
    a = make_client(database_url=a_url)
    b = make_client(database_url=b_url, sampling_rate=0.0)
    ask(a, openai_server, labels={"who": "a"})
    ask(b, openai_server, labels={"who": "b1"})  # sampled out by b's own rate
    ask(b, openai_server, labels={"who": "b2"}, sample=1.0)  # the per-call sample overrides b's config
    assert a.flush() and b.flush()
    assert stored(a_url) == ["a"]
    assert stored(b_url) == ["b2"]
    assert b.count_events() == 1 and a.count_events() == 1


def test_three_clients_sqlite_postgres_and_one_without_persistence(
    make_client: Callable[..., LeanLLM], openai_server: Any, tmp_path: Path, postgres_url: str
) -> None:
    a_url = _url(tmp_path, "a.db")
    a = make_client(database_url=a_url)
    b = make_client(database_url=postgres_url, sampling_rate=0.5)
    c = make_client(database_url=None, enable_persistence=False)
    for _ in range(4):
        ask(a, openai_server, labels={"who": "a"})
        ask(b, openai_server, labels={"who": "b"}, sample=1.0)
        ask(c, openai_server, labels={"who": "c"})
    assert a.flush() and b.flush() and c.flush()
    assert stored(a_url) == ["a"] * 4
    assert stored(postgres_url) == ["b"] * 4
    assert [e.labels["who"] for e in c.recent_events()] == ["c"] * 4  # c keeps its events in memory only
    assert c.dropped_events_count == 0 and c.events_in_flight == 0


def test_redaction_mode_follows_each_client(
    make_client: Callable[..., LeanLLM], openai_server: Any, tmp_path: Path
) -> None:
    a_url, b_url = _url(tmp_path, "a.db"), _url(tmp_path, "b.db")
    a = make_client(database_url=a_url, capture_content=True)  # redacted
    b = make_client(database_url=b_url, redaction_mode="full")
    ask(a, openai_server, EMAIL, labels={"who": "a"})
    ask(b, openai_server, EMAIL, labels={"who": "b"})
    assert a.flush() and b.flush()
    [a_event], [b_event] = stored_events(a_url), stored_events(b_url)
    assert (a_event.labels["who"], a_event.redaction_mode) == ("a", "redacted")
    assert (b_event.labels["who"], b_event.redaction_mode) == ("b", "full")
    assert "jane.doe@example.com" not in json.dumps(a_event.input_messages)
    assert "jane.doe@example.com" in json.dumps(b_event.input_messages)
    assert a.last_event is not None and a.last_event.redaction_mode == "redacted"
    assert b.last_event is not None and b.last_event.redaction_mode == "full"


def test_hooks_and_last_event_stay_with_their_client(
    make_client: Callable[..., LeanLLM], openai_server: Any, tmp_path: Path
) -> None:
    a_url, b_url = _url(tmp_path, "a.db"), _url(tmp_path, "b.db")
    a_posted: list[Any] = []
    b_posted: list[Any] = []
    a = make_client(database_url=a_url, post_call_hook=a_posted.append)
    b = make_client(database_url=b_url, post_call_hook=b_posted.append)
    ask(a, openai_server, labels={"who": "a"}, request_id="a-1")
    ask(b, openai_server, labels={"who": "b"}, request_id="b-1")
    assert [e.event_id for e in a_posted] == ["a-1"] and [e.event_id for e in b_posted] == ["b-1"]
    assert a.last_event is not None and a.last_event.event_id == "a-1"
    assert b.last_event is not None and b.last_event.event_id == "b-1"
    assert a.get_event("b-1") is None and b.get_event("a-1") is None
    assert a.get_event("a-1") is not None and b.get_event("b-1") is not None


def test_with_configure_active_its_store_gets_only_unrouted_calls_and_otlp_gets_every_kept_span(
    make_client: Callable[..., LeanLLM], openai_server: Any, tmp_path: Path
) -> None:
    p_url, a_url = _url(tmp_path, "process.db"), _url(tmp_path, "a.db")
    otlp = InMemorySpanExporter()
    pipeline = leanllm_otel.configure(LeanLLMConfig(database_url=p_url), exporters=[otlp])
    try:
        a = make_client(database_url=a_url)
        c = make_client(database_url=None, enable_persistence=False)
        assert a.pipeline is pipeline and c.pipeline is pipeline
        ask(a, openai_server, labels={"who": "a"})
        ask(c, openai_server, labels={"who": "c"})
        litellm.completion(model=MODEL, messages=[{"role": "user", "content": "direct"}],
                           api_base=openai_server.base_url, api_key="sk-test")
        assert a.flush() and pipeline.force_flush()
        assert stored(a_url) == ["a"]
        assert stored(p_url) == [""]  # the direct call only: no client's row
        who = sorted(str(s.attributes.get("leanllm.label.who", "")) for s in otlp.get_finished_spans()
                     if "leanllm.request_id" in (s.attributes or {}))
        assert len(who) == 3 and {"a", "c"} <= set(who)
        a.close()
        c.close()
    finally:
        pipeline.shutdown()


def test_clients_in_threads_and_asyncio_tasks_never_cross(
    make_client: Callable[..., LeanLLM], openai_server: Any, tmp_path: Path
) -> None:
    a_url, b_url = _url(tmp_path, "a.db"), _url(tmp_path, "b.db")
    a = make_client(database_url=a_url)
    b = make_client(database_url=b_url, capture_content=True)
    clients = {"a": a, "b": b}
    barrier = threading.Barrier(6)

    def worker(name: str, index: int) -> None:
        barrier.wait(timeout=10)
        for _ in range(5):
            ask(clients[name], openai_server, labels={"who": name})

    threads = [threading.Thread(target=worker, args=(name, i)) for i in range(3) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    async def tasks() -> None:
        await asyncio.gather(*(aask(clients[name], openai_server, labels={"who": name})
                               for _ in range(10) for name in ("a", "b")))

    asyncio.run(tasks())
    assert a.flush() and b.flush()
    assert stored(a_url) == ["a"] * 25
    assert stored(b_url) == ["b"] * 25


def test_close_flushes_and_stops_only_its_own_sinks(
    make_client: Callable[..., LeanLLM], openai_server: Any, tmp_path: Path
) -> None:
    a_url, b_url = _url(tmp_path, "a.db"), _url(tmp_path, "b.db")
    a = make_client(database_url=a_url)
    b = make_client(database_url=b_url)
    ask(b, openai_server, labels={"who": "b"})
    b.close()  # flushed b's queue, shut b's exporter
    assert stored(b_url) == ["b"]
    ask(a, openai_server, labels={"who": "a"})
    assert a.flush()
    assert stored(a_url) == ["a"] and stored(b_url) == ["b"]


def test_a_process_wide_setting_that_differs_fails_at_construction(
    make_client: Callable[..., LeanLLM], tmp_path: Path
) -> None:
    make_client(database_url=_url(tmp_path, "a.db"))
    with pytest.raises(ConfigError, match=r"security_scan.*auto_normalize"):
        make_client(database_url=_url(tmp_path, "b.db"), security_scan=True, auto_normalize=True)


def test_own_store_without_a_leanllm_processor_fails_at_construction(
    make_client: Callable[..., LeanLLM], make_instrumented: Callable[..., Any], tmp_path: Path
) -> None:
    make_instrumented()  # LiteLLM instrumented, no leanllm span processor anywhere
    with pytest.raises(ConfigError, match="database_url"):
        make_client(database_url=_url(tmp_path, "a.db"))


_INSTRUMENTED_APP = """
import os, sys
import litellm
from leanllm_otel import LeanLLM, LeanLLMConfig

base = os.environ["OPENAI_COMPATIBLE_API_BASE"]
messages = [{"role": "user", "content": "hi"}]
a = LeanLLM(api_key="sk-test", config=LeanLLMConfig(database_url=sys.argv[1]))
c = LeanLLM(api_key="sk-test", config=LeanLLMConfig(database_url=None, enable_persistence=False))
a.chat("openai/gpt-4o-mini", messages, {"who": "a"}, api_base=base)
c.chat("openai/gpt-4o-mini", messages, {"who": "c"}, api_base=base)
litellm.completion(model="openai/gpt-4o-mini", messages=messages, api_base=base, api_key="sk-test")
a.close()
c.close()
"""


def test_under_opentelemetry_instrument_each_client_keeps_its_own_rows(
    openai_server: Any, otlp_receiver: Any, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    p_url, a_url = _url(tmp_path, "process.db"), _url(tmp_path, "a.db")
    app = tmp_path / "app.py"
    app.write_text(_INSTRUMENTED_APP)
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "LEANLLM_"))}
    environ.update({
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "OPENAI_COMPATIBLE_API_BASE": openai_server.base_url,
        "OTEL_TRACES_EXPORTER": "otlp,leanllm",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": otlp_receiver.traces_endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "LEANLLM_DATABASE_URL": p_url,
    })
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    result = subprocess.run([str(instrument), sys.executable, str(app), a_url], env=environ, capture_output=True,
                            text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    assert stored(a_url) == ["a"]
    assert stored(p_url) == [""]  # the direct LiteLLM call only
    who = sorted(str(s["attributes"].get("leanllm.label.who", "")) for s in otlp_receiver.spans
                 if "leanllm.request_id" in s["attributes"])
    assert who == ["", "a", "c"]


def test_each_client_hashes_with_its_own_key(
    make_client: Callable[..., LeanLLM], openai_server: Any, tmp_path: Path
) -> None:
    urls = {name: _url(tmp_path, f"{name}.db") for name in ("a", "b", "c")}
    keys = {"a": "key-one", "b": "key-two", "c": "key-one"}
    clients = {name: make_client(database_url=urls[name], capture_content=True, redaction_mode="hashed",
                                 hash_key=keys[name])
               for name in urls}
    for name, client in clients.items():
        ask(client, openai_server, EMAIL, labels={"who": name})
        assert client.flush()
    events = {name: stored_events(url) for name, url in urls.items()}
    assert {name: [e.labels["who"] for e in rows] for name, rows in events.items()} == {
        "a": ["a"], "b": ["b"], "c": ["c"]}
    hashed = {name: json.dumps(rows[0].input_messages) for name, rows in events.items()}
    assert "jane.doe@example.com" not in hashed["a"] + hashed["b"]
    assert hashed["a"] == hashed["c"] != hashed["b"]


def test_streams_and_errors_of_a_sampled_out_client_reach_only_its_store(
    make_client: Callable[..., LeanLLM], openai_server: Any, tmp_path: Path
) -> None:
    a_url, b_url = _url(tmp_path, "a.db"), _url(tmp_path, "b.db")
    a = make_client(database_url=a_url)
    b = make_client(database_url=b_url, sampling_rate=0.0)
    stream = b.chat(MODEL, [{"role": "user", "content": "hi"}], {"who": "b-stream"}, api_base=openai_server.base_url,
                    stream=True, sample=1.0)
    ask(a, openai_server, labels={"who": "a"})  # a's call ends while b's stream is still open
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    with pytest.raises(Exception):  # noqa: B017 - whatever LiteLLM raises for a refused connection
        b.chat(MODEL, [{"role": "user", "content": "hi"}], {"who": "b-error"}, api_base="http://127.0.0.1:9/v1",
               max_retries=0)  # sampled out by b's rate, but an error is always kept
    assert a.flush() and b.flush()
    assert stored(a_url) == ["a"]
    assert stored(b_url) == ["b-error", "b-stream"]
