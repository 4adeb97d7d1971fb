"""A loopback stand-in for the LeanLLM service: ``POST /v1/events``.

The contract (DESIGN.md section 7): ``Authorization: Bearer <LEANLLM_API_KEY>``, body ``{"events": [...]}``,
answer ``{"accepted": n, "dropped": 0}``. A wrong or missing key gets 401 when
:attr:`LeanLLMServiceServer.api_key` is set. Failures are injected with
:meth:`LeanLLMServiceServer.fail_next` (status, optional ``Retry-After``) and latency with
:attr:`LeanLLMServiceServer.delay`. Gzip request bodies are accepted.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from ._loopback import LoopbackServer, QuietHandler, _HTTPServer


@dataclass
class ServiceRequest:
    """One request to the fake service, with its answer status."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    received_at: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class _Handler(QuietHandler):
    server: _HTTPServer[LeanLLMServiceServer]

    def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        owner = self.server.owner
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = gzip.decompress(raw) if (self.headers.get("Content-Encoding") or "").lower() == "gzip" else raw
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload, extra, events = owner._decide(self.path, headers, body)
        if owner.delay:
            time.sleep(owner.delay)
        owner._store(ServiceRequest("POST", self.path, headers, body, status, time.time()), events)
        self._reply(status, payload, extra)

    def do_GET(self) -> None:
        self._reply(200 if self.path.rstrip("/") in ("/health", "/v1/health") else 404, {"status": "ok"})


class LeanLLMServiceServer(LoopbackServer["LeanLLMServiceServer"]):
    """Fake LeanLLM service on ``127.0.0.1:<free port>``; ``endpoint`` is what ``LEANLLM_ENDPOINT`` takes."""

    handler_class = _Handler
    thread_name = "leanllm-service"

    def __init__(self, api_key: str | None = None, delay: float = 0.0) -> None:
        self.api_key = api_key
        self.delay = delay
        self._lock = threading.Condition()
        self._requests: list[ServiceRequest] = []
        self._events: list[dict[str, Any]] = []
        self._forced: list[tuple[int, str | None]] = []
        super().__init__()

    @property
    def endpoint(self) -> str:
        """Base URL ``http://127.0.0.1:PORT`` (the exporter appends ``/v1/events``)."""
        return self.url

    def fail_next(self, count: int, status: int = 503, retry_after: str | None = None) -> None:
        """Answer the next ``count`` event posts with ``status`` (recorded; their events are not kept)."""
        with self._lock:
            self._forced.extend([(status, retry_after)] * count)

    def _decide(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str], list[dict[str, Any]]]:
        """Status, JSON answer, extra headers and accepted events for one request."""
        if path.split("?", 1)[0].rstrip("/") != "/v1/events":
            return 404, {"error": "not found"}, {}, []
        with self._lock:
            forced = self._forced.pop(0) if self._forced else None
        if forced is not None:
            status, retry_after = forced
            return (
                status,
                {"error": f"injected {status}"},
                {"Retry-After": retry_after} if retry_after else {},
                [],
            )
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {"error": "invalid api key"}, {}, []
        try:
            parsed = json.loads(body)
            events = parsed["events"]
            if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
                raise TypeError("events must be a list of objects")
        except (ValueError, KeyError, TypeError) as exc:
            return 400, {"error": f"bad body: {exc}"}, {}, []
        return 200, {"accepted": len(events), "dropped": 0}, {}, events

    def _store(self, request: ServiceRequest, events: list[dict[str, Any]]) -> None:
        with self._lock:
            self._requests.append(request)
            self._events.extend(events)
            self._lock.notify_all()

    @property
    def requests(self) -> list[ServiceRequest]:
        """Every request received, in arrival order (including rejected ones)."""
        with self._lock:
            return list(self._requests)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every accepted event, in arrival order."""
        with self._lock:
            return list(self._events)

    def wait_for_events(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``n`` events were accepted and return them all (``TimeoutError`` if not)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._events) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"expected {n} events within {timeout}s, received {len(self._events)}")
                self._lock.wait(remaining)
            return list(self._events)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._events.clear()
