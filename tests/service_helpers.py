"""Helpers for the service-exporter and ingest-service tests: LLM spans, a fault-injecting server, row reads."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import func, select

from leanllm_otel import semconv as sc
from leanllm_otel.store import engine as db
from leanllm_otel.store.schema import events as events_table
from loopback._loopback import LoopbackServer, QuietHandler, _HTTPServer


def llm_attributes(event_id: str, **extra: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        sc.LEANLLM_REQUEST_ID: event_id,
        sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        sc.GEN_AI_USAGE_INPUT_TOKENS: 11,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 7,
        sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
        sc.LEANLLM_LABEL_PREFIX + "feature": "tests",
    }
    attributes.update(extra)
    return attributes


def make_spans(
    event_ids: Sequence[str],
    *,
    error_ids: Sequence[str] = (),
    non_llm: int = 0,
    extra: dict[str, Any] | None = None,
) -> list[ReadableSpan]:
    """Finished SDK spans under one plain parent: an LLM span per id (ERROR for ``error_ids``), ``non_llm`` others."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("request handler"):
        for event_id in event_ids:
            attributes = llm_attributes(event_id, **(extra or {}))
            if event_id in error_ids:
                attributes[sc.ERROR_TYPE] = "RateLimitError"
            with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=attributes) as s:
                if event_id in error_ids:
                    s.set_status(Status(StatusCode.ERROR, "rate limited"))
        for index in range(non_llm):
            with tracer.start_as_current_span(f"db query {index}"):
                pass
    provider.shutdown()
    return list(memory.get_finished_spans())  # the LLM spans, the plain spans, then their parent


def read_rows(database_url: str) -> dict[str, dict[str, Any]]:
    """Every stored event row, by event id (works for SQLite and PostgreSQL)."""
    database = db.Database(database_url, name="test-reader")

    async def _read(engine: Any) -> list[Any]:
        async with engine.connect() as connection:
            return list((await connection.execute(select(events_table))).mappings())

    try:
        rows = database.run(_read, 30.0)
    finally:
        database.close()
    return {row["event_id"]: dict(row) for row in rows}


def count_rows(database_url: str) -> int:
    database = db.Database(database_url, name="test-counter")

    async def _count(engine: Any) -> int:
        async with engine.connect() as connection:
            return int((await connection.execute(select(func.count()).select_from(events_table))).scalar_one())

    try:
        return database.run(_count, 30.0)
    finally:
        database.close()


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- fault-injecting server ----------------------------------------------------------------------------------


@dataclass
class Reply:
    """One scripted answer. ``close`` drops the connection without answering; ``delay`` sleeps first."""

    status: int = 200
    body: bytes | None = None  # None: {"accepted": <events in request>, "dropped": 0}
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    close: bool = False


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw_size: int
    body: bytes
    at: float

    @property
    def events(self) -> list[dict[str, Any]]:
        try:
            return list(json.loads(self.body)["events"])
        except (ValueError, KeyError, TypeError):
            return []


class _FaultHandler(QuietHandler):
    server: _HTTPServer[FaultServer]

    def do_POST(self) -> None:
        owner = self.server.owner
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = gzip.decompress(raw) if headers.get("content-encoding", "").lower() == "gzip" else raw
        received = Received(self.path, headers, len(raw), body, time.monotonic())
        reply = owner._next(received)
        owner._record(received)
        if reply.delay:
            owner._stop.wait(min(reply.delay, 30.0))
        if reply.close:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        data = reply.body
        if data is None:
            data = json.dumps({"accepted": len(received.events), "dropped": 0}).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (timeout test)
            self.close_connection = True


class FaultServer(LoopbackServer["FaultServer"]):
    """Answers ``POST`` with scripted :class:`Reply` objects (then ``default``), recording every request.

    ``responder`` (when set) decides instead of the script, from the received request.
    """

    handler_class = _FaultHandler
    thread_name = "fault-server"

    def __init__(
        self,
        script: Sequence[Reply] = (),
        *,
        default: Reply | None = None,
        responder: Callable[[Received], Reply] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._script = list(script)
        self._default = default or Reply()
        self._responder = responder
        self._requests: list[Received] = []
        self._stop = threading.Event()
        super().__init__()

    def _next(self, received: Received) -> Reply:
        if self._responder is not None:
            return self._responder(received)
        with self._lock:
            return self._script.pop(0) if self._script else self._default

    def _record(self, received: Received) -> None:
        with self._lock:
            self._requests.append(received)

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    def stop(self) -> None:
        self._stop.set()
        super().stop()
