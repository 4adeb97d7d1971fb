"""The ingest service under hostile requests: right status for each, and it keeps serving everyone else."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from leanllm_otel import semconv as sc
from leanllm_otel.ingest import IngestServer
from service_helpers import count_rows, make_spans, read_rows

TOKEN = "ingest-reliability-token"
LIMIT = 64 * 1024


@pytest.fixture
def server(tmp_path: Path) -> Iterator[IngestServer]:
    with IngestServer(f"sqlite:///{tmp_path / 'ingest.db'}", port=0, token=TOKEN, max_body_bytes=LIMIT) as running:
        yield running


def _event(event_id: str) -> dict[str, object]:
    return {"event_id": event_id, "timestamp": datetime.now(timezone.utc).isoformat(), "model": "gpt-4o-mini"}


def _post(server: IngestServer, path: str, content: bytes, token: str | None = TOKEN,
          content_type: str = "application/json", **headers: str) -> httpx.Response:
    sent = {"Content-Type": content_type, **headers}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return httpx.post(server.url + path, content=content, headers=sent, timeout=10)


def test_hostile_requests_get_the_right_status(server: IngestServer, tmp_path: Path) -> None:
    good = json.dumps({"events": [_event("e1")]}).encode()
    assert _post(server, "/v1/events", good, token=None).status_code == 401
    assert _post(server, "/v1/events", good, token="wrong").status_code == 401
    assert _post(server, "/v1/events", good, token=TOKEN + "x").status_code == 401
    assert _post(server, "/v1/traces", b"\x00", token=None, content_type="application/x-protobuf").status_code == 401
    # oversized, declared and compressed (a gzip bomb)
    assert _post(server, "/v1/events", b"{" + b" " * (LIMIT + 10) + b"}").status_code == 413
    bomb = gzip.compress(b" " * (LIMIT * 50))
    assert _post(server, "/v1/events", bomb, **{"Content-Encoding": "gzip"}).status_code == 413
    # malformed JSON / shapes / protobuf
    for body in (b"{not json", b"\xff\xfe", b"[]", b'{"events": 3}', b'{"events": [1, "x", null]}'):
        assert _post(server, "/v1/events", body).status_code in (200, 400), body
    assert _post(server, "/v1/events", b'{"events": [1, "x", null]}').json()["dropped"] == 3
    for body in (b"\x0a\xff\xff\xff\xff\x0f", b"garbage" * 100):
        assert _post(server, "/v1/traces", body, content_type="application/x-protobuf").status_code == 400, body
    assert _post(server, "/v1/traces", b"{]", content_type="application/json").status_code == 400
    assert _post(server, "/v1/events", good, content_type="text/plain").status_code == 415
    # replayed event ids: accepted again, stored once
    for _ in range(3):
        assert _post(server, "/v1/events", good).status_code == 200
    replay = json.dumps({"events": [_event("e2"), _event("e2"), _event("e1")]}).encode()
    assert _post(server, "/v1/events", replay).status_code == 200
    assert count_rows(f"sqlite:///{tmp_path / 'ingest.db'}") == 2
    # and it still serves
    assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200


def test_slow_clients_do_not_starve_a_normal_client(server: IngestServer, tmp_path: Path) -> None:
    stop = threading.Event()
    sockets: list[socket.socket] = []
    request = f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n".encode()

    def trickle(sock: socket.socket) -> None:
        for byte in request:  # one header byte per second (bounded by the test)
            if stop.wait(1.0):
                return
            try:
                sock.send(bytes([byte]))
            except OSError:
                return

    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sockets.append(sock)
        threading.Thread(target=trickle, args=(sock,), daemon=True).start()
    try:
        time.sleep(0.5)
        served = []
        for i in range(3):
            started = time.monotonic()
            reply = _post(server, "/v1/events", json.dumps({"events": [_event(f"n{i}")]}).encode())
            served.append((reply.status_code, time.monotonic() - started))
            time.sleep(0.3)
        assert [status for status, _ in served] == [200, 200, 200]
        assert all(elapsed < 5 for _, elapsed in served), served  # loose: never waits for the slow clients
    finally:
        stop.set()
        for sock in sockets:
            sock.close()
    assert count_rows(f"sqlite:///{tmp_path / 'ingest.db'}") == 3


# --- issue 19, item 7 -----------------------------------------------------------------------------------------

PROMPT = "PROMPT-TEXT-must-not-be-echoed"


def test_every_route_requires_its_content_type(server: IngestServer, tmp_path: Path) -> None:
    """A browser's no-cors fetch from any web page sends no Content-Type (or text/plain): never accepted."""
    good = json.dumps({"events": [_event("ct")]}).encode()
    for path in ("/v1/events", "/v1/traces"):
        no_type = httpx.post(server.url + path, content=good, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert no_type.status_code == 415, (path, no_type.text)
        for media in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            assert _post(server, path, good, content_type=media).status_code == 415, (path, media)
    assert _post(server, "/v1/events", good, content_type="application/json; charset=utf-8").status_code == 200
    assert count_rows(f"sqlite:///{tmp_path / 'ingest.db'}") == 1


def test_deeply_nested_json_is_a_400_with_a_reason(roomy_server: IngestServer,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    cases = (("/v1/events", deep), ("/v1/events", b'{"events": [{"event_id": "d", "metadata": ' + deep + b"}]}"),
             ("/v1/traces", deep), ("/v1/traces", b'{"resourceSpans": [{"scopeSpans": [{"spans": [' + deep + b"]}]}]}"))
    with caplog.at_level(logging.DEBUG):
        for path, body in cases:
            answer = _post(roomy_server, path, body)
            assert answer.status_code == 400, (path, answer.status_code, answer.text)
            assert "nested too deeply" in answer.text, answer.text
    assert not [r for r in caplog.records if r.exc_info], "no traceback for bad input"
    assert "Traceback" not in caplog.text


@pytest.fixture
def roomy_server(tmp_path: Path) -> Iterator[IngestServer]:
    """The service with its default body limit (16 MB)."""
    with IngestServer(f"sqlite:///{tmp_path / 'ingest.db'}", port=0, token=TOKEN) as running:
        yield running


def test_one_id_rule_first_write_wins_and_ids_are_validated(roomy_server: IngestServer, tmp_path: Path) -> None:
    server = roomy_server
    url = f"sqlite:///{tmp_path / 'ingest.db'}"
    first = [_event("same") | {"model": "first"}, _event("same") | {"model": "second"}]
    assert _post(server, "/v1/events", json.dumps({"events": first}).encode()).json()["accepted"] == 2
    assert _post(server, "/v1/events", json.dumps({"events": [_event("same") | {"model": "third"}]}).encode())
    assert read_rows(url)["same"]["model"] == "first"
    huge = "i" * 1_000_000
    answer = _post(server, "/v1/events", json.dumps({"events": [_event(""), _event(huge), _event("ok")]}).encode())
    body = answer.json()
    assert answer.status_code == 200 and body["accepted"] == 1 and body["dropped"] == 2
    assert all("event_id" in reason for reason in body["errors"]) and huge not in answer.text
    # the same rule on the OTLP route
    spans = make_spans(["otlp-same", "otlp-same"], extra={sc.GEN_AI_REQUEST_MODEL: "first"})
    assert _post(server, "/v1/traces", encode_spans(spans).SerializeToString(),
                 content_type="application/x-protobuf").status_code == 200
    later = make_spans(["otlp-same"], extra={sc.GEN_AI_REQUEST_MODEL: "later"})
    assert _post(server, "/v1/traces", encode_spans(later).SerializeToString(),
                 content_type="application/x-protobuf").status_code == 200
    assert read_rows(url)["otlp-same"]["model"] == "first"
    assert set(read_rows(url)) == {"same", "ok", "otlp-same"}


def test_reasons_name_the_field_never_the_value(server: IngestServer, caplog: pytest.LogCaptureFixture) -> None:
    span = {"name": "chat", "startTimeUnixNano": PROMPT, "attributes": [
        {"key": sc.LEANLLM_REQUEST_ID, "value": {"stringValue": "r1"}},
        {"key": "x", "value": {"intValue": PROMPT}}]}
    documents = [
        ("/v1/traces", {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}),
        ("/v1/traces", {"resourceSpans": [{"resource": {"attributes": [{"key": "k", "value": {"intValue": PROMPT}}]},
                                           "scopeSpans": []}]}),
        ("/v1/traces", {"resourceSpans": PROMPT}),
        ("/v1/events", {"events": [{"event_id": "e", "timestamp": PROMPT, "model": "m"},
                                   {"event_id": "f", "timestamp": "2030-01-01T00:00:00Z", "labels": {PROMPT: 1}},
                                   {"event_id": "g", "timestamp": "2030-01-01T00:00:00Z", "input_tokens": PROMPT}]}),
        ("/v1/events", {"events": PROMPT}),
    ]
    with caplog.at_level(logging.DEBUG, logger="leanllm_otel"):
        for path, document in documents:
            answer = _post(server, path, json.dumps(document).encode())
            assert answer.status_code in (200, 400)
            assert PROMPT not in answer.text, answer.text
            assert "timestamp" in answer.text or "startTimeUnixNano" in answer.text or "resource" in answer.text \
                or "events" in answer.text, answer.text
    assert PROMPT not in caplog.text


def test_healthz_answers_while_a_big_request_is_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """By behaviour, not by the clock: the decoding of a large request waits until /healthz has been answered.
    Were decoding on the event loop, nothing else could be answered meanwhile and the health check would fail."""
    from leanllm_otel.ingest import app as ingest_app

    decoding = threading.Event()
    answered = threading.Event()
    real_decode, real_parse = ingest_app.decode_request, ingest_app.parse_events

    def decode(body: bytes, *, json_encoded: bool) -> Any:
        decoding.set()
        answered.wait(30)
        return real_decode(body, json_encoded=json_encoded)

    def parse(body: bytes) -> Any:
        decoding.set()
        answered.wait(30)
        return real_parse(body)

    monkeypatch.setattr(ingest_app, "decode_request", decode)
    monkeypatch.setattr(ingest_app, "parse_events", parse)
    ids = [f"big-{i}" for i in range(3000)]
    bodies = {
        "/v1/traces": (encode_spans(make_spans(ids)).SerializeToString(), "application/x-protobuf"),
        "/v1/events": (json.dumps({"events": [_event(f"ev-{i}") for i in range(3000)]}).encode(), "application/json"),
    }
    with IngestServer(f"sqlite:///{tmp_path / 'big.db'}", port=0, token=TOKEN) as running:
        for path, (body, media) in bodies.items():
            decoding.clear()
            answered.clear()
            result: list[httpx.Response] = []
            sender = threading.Thread(target=lambda: result.append(  # noqa: B023
                _post(running, path, body, content_type=media)))  # noqa: B023
            sender.start()
            assert decoding.wait(30), "the request never reached decoding"
            health = httpx.get(running.url + "/healthz", timeout=10)
            answered.set()
            sender.join(60)
            assert health.status_code == 200
            assert result and result[0].status_code == 200, result
    assert count_rows(f"sqlite:///{tmp_path / 'big.db'}") == 6000


def test_idle_and_slow_connections_are_closed(tmp_path: Path) -> None:
    with IngestServer(f"sqlite:///{tmp_path / 'idle.db'}", port=0, token=TOKEN, header_timeout_s=1.0,
                      keep_alive_s=1, body_timeout_s=1.0) as running:
        idle = socket.create_connection(("127.0.0.1", running.port), timeout=20)
        partial = socket.create_connection(("127.0.0.1", running.port), timeout=20)
        partial.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n")  # a head that is never finished
        slow_body = socket.create_connection(("127.0.0.1", running.port), timeout=20)
        slow_body.sendall(f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                          "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode())
        try:
            assert idle.recv(1024) == b""  # closed by the server (the socket timeout bounds the test only)
            assert partial.recv(1024) == b""
            assert slow_body.recv(4096).startswith(b"HTTP/1.1 408")
        finally:
            for sock in (idle, partial, slow_body):
                sock.close()
        ok = _post(running, "/v1/events", json.dumps({"events": [_event("after")]}).encode())
        assert ok.status_code == 200


_FD_LIMITED_SERVER = """
import resource, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
from leanllm_otel.ingest import IngestServer
server = IngestServer(sys.argv[1], port=0, token=sys.argv[2], header_timeout_s=60.0)
server.start()
print(server.port, flush=True)
sys.stdin.read()
server.stop()
"""


def test_descriptor_exhaustion_never_locks_out_a_client(tmp_path: Path) -> None:
    """300 idle sockets against a server limited to 256 file descriptors (header deadline far away): the oldest
    idle connections make room, so an authenticated client is still served."""
    import subprocess
    import sys

    from .helpers import subprocess_env

    child = subprocess.Popen([sys.executable, "-c", _FD_LIMITED_SERVER, f"sqlite:///{tmp_path / 'fd.db'}", TOKEN],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=subprocess_env())
    idle: list[socket.socket] = []
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        for _ in range(300):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        body = json.dumps({"events": [_event("fd-ok")]}).encode()
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/events", content=body, timeout=20,
                            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        assert answer.status_code == 200 and answer.json()["accepted"] == 1
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=20).status_code == 200
    finally:
        for sock in idle:
            sock.close()
        if child.stdin is not None:
            child.stdin.close()
        child.wait(30)
    assert count_rows(f"sqlite:///{tmp_path / 'fd.db'}") == 1


class _BlockingSink:
    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, events: Any) -> None:
        self.entered.set()
        self.release.wait(30)


def test_a_concurrency_limit_answers_503_and_health_stays_up(tmp_path: Path) -> None:
    sink = _BlockingSink()
    with IngestServer("sqlite:///unused.db", port=0, token=TOKEN, sink=sink, max_concurrent_requests=1) as running:
        body = json.dumps({"events": [_event("c1")]}).encode()
        first: list[httpx.Response] = []
        sender = threading.Thread(target=lambda: first.append(_post(running, "/v1/events", body)))
        sender.start()
        try:
            assert sink.entered.wait(20)
            busy = _post(running, "/v1/events", body)
            assert busy.status_code == 503 and busy.headers.get("Retry-After")
            assert httpx.get(running.url + "/healthz", timeout=10).status_code == 200
        finally:
            sink.release.set()
            sender.join(30)
        assert first and first[0].status_code == 200
