"""The real LiteLLM proxy (``litellm --config ...``) on loopback, with a model routed to the loopback provider.

Two ways a proxy user gets leanllm-otel spans, both exercised here:

- ``callbacks: ["leanllm_otel.proxy.proxy_handler_instance"]`` in the proxy's config.yaml (``leanllm_otel.proxy``
  configures from ``LEANLLM_*`` / ``OTEL_*`` at import and honours ``turn_off_message_logging``);
- ``opentelemetry-instrument litellm --config exporters/litellm-proxy-config.yaml`` with the shipped file.

The proxy's master key is a planted marker: neither it nor its hash (what the proxy passes around as
``user_api_key`` / ``user_api_key_hash``) may appear anywhere in the SQLite file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from support import OpenAIServer
from support.litellm_behaviour import PROXY_CALLBACKS_FROM_FILES_ONLY

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SHIPPED_CONFIG = ROOT / "exporters" / "litellm-proxy-config.yaml"
CALLBACK = "leanllm_otel.proxy.proxy_handler_instance"

# litellm[proxy] is part of the test extra: without it this module fails to import rather than skip (the version
# matrix leaves it out of the one cell whose LiteLLM has no installable proxy extra).
import litellm.proxy.proxy_server  # noqa: E402, F401


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proxy:
    def __init__(self, process: subprocess.Popen[str], port: int, master_key: str, log: Path) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.master_key = master_key
        self.log = log

    def chat(self, content: str, model: str = "gpt-4o-mini") -> httpx.Response:
        return httpx.post(
            f"{self.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {self.master_key}"},
            json={"model": model, "messages": [{"role": "user", "content": content}]},
            timeout=30,
        )

    def stop(self) -> None:
        """SIGTERM (what a process manager sends) and wait: the exit path flushes the export queue."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
                raise AssertionError("the proxy did not exit within 30 s of SIGTERM") from None


@contextlib.contextmanager
def run_proxy(config: Path, env: dict[str, str], instrument: bool = False) -> Iterator[Proxy]:
    port = free_port()
    master_key = env["LITELLM_MASTER_KEY"]
    log = config.parent / f"proxy-{port}.log"
    command = [str(BIN / "litellm"), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    if instrument:
        # `--`: without it opentelemetry-instrument's argparse takes `--config` for its own `--configurator`.
        command = [str(BIN / "opentelemetry-instrument"), "--", *command]
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=config.parent)
    proxy = Proxy(process, port, master_key, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, f"proxy exited early:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"proxy did not become ready:\n{log.read_text()[-4000:]}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{proxy.url}/health/liveliness", timeout=2).status_code == 200:
                    break
            time.sleep(0.25)
        yield proxy
    finally:
        proxy.stop()


def proxy_env(openai_server: OpenAIServer, sqlite_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LEANLLM_", "LITELLM_", "DATABASE_URL"))}
    env.update(
        {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_LOG": "ERROR",
            "LITELLM_MASTER_KEY": f"sk-PLANTED-{uuid.uuid4().hex}",
            "OPENAI_COMPATIBLE_API_BASE": openai_server.base_url,
            "OPENAI_COMPATIBLE_API_KEY": "sk-provider-test",
            "LEANLLM_DATABASE_URL": sqlite_url,
            "LEANLLM_FLUSH_INTERVAL_MS": "200",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_SERVICE_NAME": "litellm-proxy",
        }
    )
    env.update(extra)
    return env


def callback_for(config_dir: Path) -> str:
    """The ``callbacks:`` entry: ours, or on a LiteLLM that loads callbacks only from files beside the config
    (``PROXY_CALLBACKS_FROM_FILES_ONLY``), a one-line file there re-exporting ours (what the README tells users)."""
    if not PROXY_CALLBACKS_FROM_FILES_ONLY:
        return CALLBACK
    (config_dir / "leanllm_callback.py").write_text("from leanllm_otel.proxy import proxy_handler_instance\n")
    return "leanllm_callback.proxy_handler_instance"


def write_config(tmp_path: Path, *, turn_off_message_logging: bool) -> Path:
    config = {
        "model_list": [
            {
                "model_name": "gpt-4o-mini",
                "litellm_params": {
                    "model": "openai/gpt-4o-mini",
                    "api_base": "os.environ/OPENAI_COMPATIBLE_API_BASE",
                    "api_key": "os.environ/OPENAI_COMPATIBLE_API_KEY",
                    "max_retries": 0,
                },
            }
        ],
        "litellm_settings": {
            "callbacks": [callback_for(tmp_path)],
            "turn_off_message_logging": turn_off_message_logging,
            "redact_user_api_key_info": True,
        },
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
    }
    path = tmp_path / "proxy-config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def rows(sqlite_url: str) -> list[dict[str, Any]]:
    path = sqlite_url.removeprefix("sqlite:///")
    if not Path(path).exists():
        return []
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name='leanllm_events'").fetchone():
            return []
        return [dict(r) for r in conn.execute("SELECT * FROM leanllm_events")]


def wait_for_rows(sqlite_url: str, n: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(sqlite3.OperationalError):
            found = rows(sqlite_url)
            if len(found) >= n:
                return found
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {n} events in SQLite within {timeout}s")
        time.sleep(0.1)


def store_bytes(sqlite_url: str) -> bytes:
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def assert_no_key(sqlite_url: str, master_key: str) -> None:
    data = store_bytes(sqlite_url)
    assert data, "the store is empty"
    assert b"sk-PLANTED" not in data
    assert master_key.encode() not in data
    assert hashlib.sha256(master_key.encode()).hexdigest().encode() not in data  # the proxy's user_api_key_hash


def test_proxy_callback_records_calls_without_content_or_keys(
    tmp_path: Path, openai_server: OpenAIServer, sqlite_url: str
) -> None:
    marker = f"prompt-marker-{uuid.uuid4().hex}"
    env = proxy_env(openai_server, sqlite_url, LEANLLM_CAPTURE_CONTENT="true", LEANLLM_REDACTION_MODE="full")
    config = write_config(tmp_path, turn_off_message_logging=True)
    with run_proxy(config, env) as proxy:
        response = proxy.chat(f"hello {marker}")
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"].startswith("echo: hello")
        found = wait_for_rows(sqlite_url, 1)  # exported while the proxy runs
    # One provider call (LiteLLM 1.108 also lists the provider's models at start: GET /v1/models).
    assert len(openai_server.requests_to("/chat/completions")) == 1
    found = rows(sqlite_url)
    assert len(found) == 1  # one span per call: Router -> acompletion nesting does not duplicate it
    event = found[0]
    assert event["model"] == "gpt-4o-mini" and event["provider"] == "openai" and event["status"] == "ok"
    assert event["input_tokens"] is not None and event["operation"] == "chat"
    # turn_off_message_logging wins over LEANLLM_CAPTURE_CONTENT / LEANLLM_REDACTION_MODE=full
    assert event["redaction_mode"] == "metadata"
    assert event["input_messages"] is None and event["output_messages"] is None
    assert marker.encode() not in store_bytes(sqlite_url)
    assert_no_key(sqlite_url, proxy.master_key)


def test_proxy_callback_captures_content_when_message_logging_is_on(
    tmp_path: Path, openai_server: OpenAIServer, sqlite_url: str
) -> None:
    """The control for the test above: same setup, switch off, so content is captured (keys still never)."""
    marker = f"prompt-marker-{uuid.uuid4().hex}"
    env = proxy_env(openai_server, sqlite_url, LEANLLM_CAPTURE_CONTENT="true", LEANLLM_REDACTION_MODE="full")
    config = write_config(tmp_path, turn_off_message_logging=False)
    with run_proxy(config, env) as proxy:
        assert proxy.chat(f"hello {marker}").status_code == 200
        assert proxy.chat("second call", model="no-such-model").status_code >= 400  # rejected by the router
        # LiteLLM runs its success callbacks after the response, on its own logging worker: under load a SIGTERM
        # sent right away can stop the proxy before the callback ran (no span exists yet to flush), so wait.
        wait_for_rows(sqlite_url, 1)
    found = rows(sqlite_url)
    assert len(found) == 1
    assert found[0]["redaction_mode"] == "full"
    assert marker in (found[0]["input_messages"] or "")
    assert_no_key(sqlite_url, proxy.master_key)


def test_shipped_proxy_config_under_opentelemetry_instrument(
    tmp_path: Path, openai_server: OpenAIServer, sqlite_url: str
) -> None:
    """``exporters/litellm-proxy-config.yaml`` run the way its header documents, content capture asked for."""
    settings = yaml.safe_load(SHIPPED_CONFIG.read_text())["litellm_settings"]
    assert settings["turn_off_message_logging"] is True
    # Without the callback nothing in the proxy process would honour turn_off_message_logging.
    assert CALLBACK in (settings.get("callbacks") or []), f"{SHIPPED_CONFIG.name} must list {CALLBACK}"
    config = tmp_path / "litellm-proxy-config.yaml"
    config.write_text(SHIPPED_CONFIG.read_text().replace(CALLBACK, callback_for(tmp_path)))
    marker = f"prompt-marker-{uuid.uuid4().hex}"
    env = proxy_env(
        openai_server,
        sqlite_url,
        OTEL_TRACES_EXPORTER="leanllm",
        LEANLLM_CAPTURE_CONTENT="true",
        LEANLLM_REDACTION_MODE="full",
    )
    with run_proxy(config, env, instrument=True) as proxy:
        assert proxy.chat(f"hello {marker}").status_code == 200
        wait_for_rows(sqlite_url, 1)
    found = rows(sqlite_url)
    # One event: the callback saw opentelemetry-instrument's instrumentation and did not add a second one.
    assert len(found) == 1 and found[0]["model"] == "gpt-4o-mini" and found[0]["status"] == "ok"
    assert found[0]["redaction_mode"] == "metadata"
    assert marker.encode() not in store_bytes(sqlite_url)
    assert_no_key(sqlite_url, proxy.master_key)
