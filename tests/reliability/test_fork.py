"""Fork: pre-fork workers export their own spans exactly once and never the parent's queue twice; SQL
connections are reopened in the child.

DESIGN.md section 9: a forked child that has called LiteLLM hangs at ``sys.exit`` (LiteLLM's logging worker
thread does not survive the fork), so workers flush explicitly and leave with ``os._exit``.
"""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from service_helpers import read_rows
from support import OTLPReceiver

from .helpers import run_python, subprocess_env, wait_until

_PREFORK = """
import os
import litellm
import leanllm_otel
from leanllm_otel import CallOptions, use_call_options

pipe = leanllm_otel.configure(database_url={url!r}, otlp=True, flush_interval_ms=600000, batch_size=1000)

def call(event_id):
    with use_call_options(CallOptions(request_id=event_id)):
        answer = litellm.completion(model="gpt-4o-mini", messages=[{{"role": "user", "content": event_id}}],
                                    mock_response="answer " + event_id)
    assert answer.choices[0].message.content == "answer " + event_id

for i in range(3):
    call(f"parent-{{i}}")  # queued in the parent, not yet exported, when the workers fork

workers = []
for w in range(3):
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            for i in range(5):
                call(f"worker{{w}}-{{i}}")
            code = 0 if pipe.force_flush(20000) else 3
        except BaseException:
            import traceback; traceback.print_exc()
            code = 4
        os._exit(code)
    workers.append(pid)

codes = [os.waitpid(pid, 0)[1] for pid in workers]
assert codes == [0, 0, 0], codes
pipe.shutdown()
print("done", flush=True)
"""


@pytest.fixture
def receiver() -> Any:
    with OTLPReceiver() as server:
        yield server


def _exactly_once(receiver: OTLPReceiver, expected: set[str]) -> None:
    assert wait_until(lambda: len(_ids(receiver)) >= len(expected), timeout=10)
    counts = collections.Counter(_ids(receiver))
    assert set(counts) == expected
    assert all(n == 1 for n in counts.values()), {k: n for k, n in counts.items() if n > 1}


def _ids(receiver: OTLPReceiver) -> list[str]:
    return [str(s["attributes"]["leanllm.request_id"]) for s in receiver.spans
            if "leanllm.request_id" in s["attributes"]]


EXPECTED = {f"parent-{i}" for i in range(3)} | {f"worker{w}-{i}" for w in range(3) for i in range(5)}


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_os_fork_workers(store: str, receiver: OTLPReceiver, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}" if store == "sqlite" else request.getfixturevalue("postgres_url")
    env = subprocess_env(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.traces_endpoint)
    done = run_python(_PREFORK.format(url=url), timeout=90, env=env)
    assert done.returncode == 0 and "done" in done.stdout, done.stderr[-20000:]
    _exactly_once(receiver, EXPECTED)
    assert set(read_rows(url)) == EXPECTED  # each child wrote through its own, freshly opened connections


_GUNICORN_APP = """
import os
import litellm
import leanllm_otel

# --preload: this runs once, in the master, before the workers fork.
pipeline = leanllm_otel.configure(database_url=os.environ["APP_DATABASE_URL"], otlp=True,
                                  flush_interval_ms=600000, shutdown_timeout_ms=5000)
litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "warm-up"}], mock_response="ok")

def app(environ, start_response):
    path = environ["PATH_INFO"]
    answer = litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": path}],
                                mock_response="hello " + path)
    body = (answer.choices[0].message.content + " from " + str(os.getpid())).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""

_GUNICORN_CONFIG = """
import os

def worker_exit(server, worker):
    # Flush this worker's spans, then leave without running LiteLLM's exit handlers (DESIGN.md section 9).
    import app
    app.pipeline.shutdown()
    os._exit(0)
"""


def test_gunicorn_preload_workers(receiver: OTLPReceiver, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(_GUNICORN_APP)
    (tmp_path / "gunicorn_conf.py").write_text(_GUNICORN_CONFIG)
    url = f"sqlite:///{tmp_path / 'events.db'}"
    env = subprocess_env(
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.traces_endpoint,
        APP_DATABASE_URL=url,
        PYTHONPATH=f"{tmp_path}:{subprocess_env()['PYTHONPATH']}",
    )
    sock = tmp_path / "gunicorn.sock"
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--preload", "-w", "2", "-b", f"unix:{sock}", "-c",
         str(tmp_path / "gunicorn_conf.py"), "--graceful-timeout", "10", "app:app"],
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    pids: set[str] = set()
    try:
        assert wait_until(sock.exists, timeout=60), process.stderr.read() if process.poll() is not None else ""
        import http.client
        import socket as socket_module

        class UnixConnection(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_STREAM)
                self.sock.settimeout(30)
                self.sock.connect(str(sock))

        for i in range(12):
            connection = UnixConnection("localhost")
            connection.request("GET", f"/req{i}")
            reply = connection.getresponse().read().decode()
            connection.close()
            assert reply.startswith(f"hello /req{i} from ")
            pids.add(reply.rsplit(" ", 1)[1])
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=45)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    stderr = process.stderr.read() if process.stderr else ""
    assert process.returncode == 0, stderr
    wanted = {f"/req{i}" for i in range(12)} | {"warm-up"}
    contents = [r["event_id"] for r in read_rows(url).values()]
    assert len(contents) == 13, stderr[-5000:]
    # every request exported once over OTLP, and the master's pre-fork warm-up exactly once (never per worker)
    counts = collections.Counter(_ids(receiver))
    assert len(counts) == 13 and all(n == 1 for n in counts.values()), counts
    assert len(wanted) == 13
