"""The ingest service under hostile requests: right status for each, and it keeps serving everyone else."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from leanllm_otel.ingest import IngestServer
from service_helpers import count_rows

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
