"""Shutdown: exit flushes a full queue within the budget, twice is harmless, SIGTERM flushes a real server,
a hung backend cannot hold the exit past the budget."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider

import leanllm_otel
from service_helpers import count_rows

from .helpers import REPO, CollectingExporter, stub_completion, subprocess_env, traced_stub

_QUEUED_THEN_EXIT = """
import sys, time
import leanllm_otel
from reliability.helpers import CollectingExporter, stub_completion, traced_stub
hang = {hang}
pipe = leanllm_otel.configure(
    database_url=None if hang else {url!r}, enable_persistence=not hang, otlp=False,
    exporters=[CollectingExporter(gate=__import__("threading").Event())] if hang else [],
    queue_max_size=5000, batch_size=5000, flush_interval_ms=600000, shutdown_timeout_ms={budget_ms},
)
call = traced_stub(stub_completion)
for i in range({n}):
    call(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}], tag=str(i))
assert pipe.counters["kept"] == {n}
print("exiting", flush=True)
"""  # the process ends here: the atexit hook must flush what is queued


def _exit_time(code: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=subprocess_env(), cwd=str(REPO))
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
        started = time.monotonic()
        assert line.strip() == "exiting", (line, process.stderr.read() if process.stderr else "")
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    return time.monotonic() - started, subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_exit_with_a_full_queue_flushes_within_the_budget(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    elapsed, done = _exit_time(_QUEUED_THEN_EXIT.format(hang=False, url=url, budget_ms=10_000, n=3000))
    assert done.returncode == 0, done.stderr
    assert count_rows(url) == 3000
    assert elapsed < 10 + 3, elapsed  # the configured budget, plus interpreter teardown


def test_a_hung_backend_cannot_hold_the_exit_past_the_budget() -> None:
    elapsed, done = _exit_time(_QUEUED_THEN_EXIT.format(hang=True, url="", budget_ms=1000, n=500))
    assert done.returncode == 0, done.stderr
    assert elapsed < 1 + 4, elapsed  # 1 s budget (not the exporter's 60 s hang), plus teardown
    assert "did not finish within" in done.stderr or "shutdown exceeded" in done.stderr


def test_shutdown_twice_is_harmless() -> None:
    exporter = CollectingExporter()
    provider = TracerProvider()
    pipe = leanllm_otel.configure(tracer_provider=provider, exporters=[exporter], otlp=False,
                                  enable_persistence=False, flush_interval_ms=600_000)
    call = traced_stub(stub_completion)
    call(model="gpt-4o-mini", messages=[], tag="once")
    pipe.shutdown()
    pipe.shutdown()
    pipe.force_flush(1000)
    provider.shutdown()
    assert exporter.event_ids().count(exporter.event_ids()[0]) == 1
    assert len(exporter.spans) == 1
    # after shutdown the application still works (pass-through, nothing recorded, nothing raised)
    assert stub_completion(model="gpt-4o-mini", messages=[], tag="after").id == "resp-after"


# A real server process: each request makes a LiteLLM call; SIGTERM stops serving, then the pipeline flushes.
# This is the pattern the README documents for users.
_SERVER = """
import signal, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import litellm
import leanllm_otel

pipeline = leanllm_otel.configure(database_url={url!r}, otlp=False, flush_interval_ms=600000,
                                  shutdown_timeout_ms=5000)

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        answer = litellm.completion(model="gpt-4o-mini", messages=[{{"role": "user", "content": self.path}}],
                                    mock_response="hello " + self.path)
        body = answer.choices[0].message.content.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

def on_sigterm(signum, frame):
    threading.Thread(target=server.shutdown).start()  # stop accepting; serve_forever returns

signal.signal(signal.SIGTERM, on_sigterm)
print(server.server_address[1], flush=True)
server.serve_forever()
server.server_close()
pipeline.shutdown()  # flush what is queued, bounded by shutdown_timeout_ms
sys.exit(0)
"""


def test_sigterm_under_a_real_server_flushes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    process = subprocess.Popen([sys.executable, "-c", _SERVER.format(url=url)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=subprocess_env(), cwd=str(REPO))
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        for i in range(15):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/r{i}", timeout=30) as reply:
                assert reply.read() == f"hello /r{i}".encode()
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=30)
        assert returncode == 0, process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
    assert count_rows(url) == 15
