"""A loopback OTLP/HTTP receiver for tests.

Accepts ``POST /v1/traces`` as ``application/x-protobuf`` or ``application/json`` (gzip-encoded or not),
``POST /v1/logs`` as protobuf (decoded into :attr:`OTLPReceiver.log_records`) and ``POST /v1/metrics`` (stored, not
decoded). Keeps every body (decompressed) for byte-level leak
scans and every span decoded into a plain dict::

    {"name", "trace_id", "span_id", "parent_span_id", "kind", "attributes", "status", "events",
     "start_time_unix_nano", "end_time_unix_nano", "resource", "scope"}

``trace_id`` / ``span_id`` / ``parent_span_id`` are lowercase hex (``parent_span_id`` is ``None`` for a root),
``kind`` is ``"INTERNAL" | "SERVER" | "CLIENT" | "PRODUCER" | "CONSUMER" | "UNSPECIFIED"``, ``status`` is
``{"code": "UNSET" | "OK" | "ERROR", "message": str}``, attribute values are Python values (str, bool, int,
float, bytes, list, dict).
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from ._loopback import LoopbackServer, QuietHandler, _HTTPServer

_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


@dataclass
class ReceivedExport:
    """One export request: signal path, headers (lowercase keys), content type and the decompressed body."""

    path: str
    headers: dict[str, str]
    content_type: str
    body: bytes
    received_at: float


def any_value(value: AnyValue) -> Any:
    """Convert an OTLP ``AnyValue`` to the Python value it carries."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, which)


def attributes(pairs: Any) -> dict[str, Any]:
    """Convert a repeated ``KeyValue`` field to a dict."""
    out: dict[str, Any] = {}
    pair: KeyValue
    for pair in pairs:
        out[pair.key] = any_value(pair.value)
    return out


def decode_traces(request: ExportTraceServiceRequest) -> list[dict[str, Any]]:
    """Flatten an ``ExportTraceServiceRequest`` into span dicts (see the module docstring)."""
    spans: list[dict[str, Any]] = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = {"name": scope_spans.scope.name, "version": scope_spans.scope.version}
            for span in scope_spans.spans:
                spans.append(
                    {
                        "name": span.name,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex() or None,
                        "kind": _KINDS.get(span.kind, str(span.kind)),
                        "attributes": attributes(span.attributes),
                        "status": {
                            "code": _STATUS.get(span.status.code, str(span.status.code)),
                            "message": span.status.message,
                        },
                        "events": [
                            {
                                "name": e.name,
                                "time_unix_nano": e.time_unix_nano,
                                "attributes": attributes(e.attributes),
                            }
                            for e in span.events
                        ],
                        "links": [
                            {
                                "trace_id": link.trace_id.hex(),
                                "span_id": link.span_id.hex(),
                                "attributes": attributes(link.attributes),
                            }
                            for link in span.links
                        ],
                        "start_time_unix_nano": span.start_time_unix_nano,
                        "end_time_unix_nano": span.end_time_unix_nano,
                        "resource": resource,
                        "scope": scope,
                    }
                )
    return spans


def decode_logs(request: ExportLogsServiceRequest) -> list[dict[str, Any]]:
    """Flatten an ``ExportLogsServiceRequest`` into record dicts: ``event_name``, ``trace_id``, ``span_id`` (hex,
    None when unset), ``severity_number``, ``time_unix_nano``, ``body``, ``attributes``, ``resource``, ``scope``."""
    records: list[dict[str, Any]] = []
    for resource_logs in request.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            scope = {"name": scope_logs.scope.name, "version": scope_logs.scope.version}
            for record in scope_logs.log_records:
                records.append(
                    {
                        "event_name": record.event_name,
                        "trace_id": record.trace_id.hex() or None,
                        "span_id": record.span_id.hex() or None,
                        "severity_number": record.severity_number,
                        "time_unix_nano": record.time_unix_nano,
                        "body": any_value(record.body),
                        "attributes": attributes(record.attributes),
                        "resource": resource,
                        "scope": scope,
                    }
                )
    return records


def _hex_ids_to_base64(node: Any) -> Any:
    """OTLP/JSON writes ids as hex; protobuf's JSON parser expects base64 for ``bytes`` fields."""
    if isinstance(node, dict):
        return {
            k: base64.b64encode(bytes.fromhex(v)).decode()
            if k in _ID_FIELDS and isinstance(v, str)
            else _hex_ids_to_base64(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids_to_base64(v) for v in node]
    return node


def parse_traces(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """Parse an OTLP trace export body (protobuf or JSON)."""
    request = ExportTraceServiceRequest()
    if "json" in content_type:
        json_format.ParseDict(_hex_ids_to_base64(json.loads(body)), request, ignore_unknown_fields=True)
    else:
        request.ParseFromString(body)
    return request


class _Handler(QuietHandler):
    server: _HTTPServer[OTLPReceiver]

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        owner = self.server.owner
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        body = gzip.decompress(raw) if encoding == "gzip" else zlib.decompress(raw) if encoding == "deflate" else raw
        content_type = (self.headers.get("Content-Type") or "application/x-protobuf").lower()
        path = self.path.split("?", 1)[0].rstrip("/")
        headers = {k.lower(): v for k, v in self.headers.items()}
        forced = owner._next_forced_status()
        owner._store_export(ReceivedExport(path, headers, content_type, body, time.time()), None)
        if forced is not None:
            self._reply(forced, b"", "text/plain")
            return
        if path not in ("/v1/traces", "/v1/metrics", "/v1/logs"):
            self._reply(404, b"", "text/plain")
            return
        if path == "/v1/traces":
            try:
                spans = decode_traces(parse_traces(body, content_type))
            except Exception as exc:  # malformed body: a real collector answers 400
                self._reply(400, str(exc).encode(), "text/plain")
                return
            owner._store_export(None, spans)
        if path == "/v1/logs" and "json" not in content_type:
            logs = ExportLogsServiceRequest()
            try:
                logs.ParseFromString(body)
            except Exception as exc:
                self._reply(400, str(exc).encode(), "text/plain")
                return
            owner._store_logs(decode_logs(logs))
            self._reply(200, ExportLogsServiceResponse().SerializeToString(), "application/x-protobuf")
            return
        if "json" in content_type:
            self._reply(200, b"{}", "application/json")
        else:
            self._reply(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")


class OTLPReceiver(LoopbackServer["OTLPReceiver"]):
    """OTLP/HTTP receiver on ``127.0.0.1:<free port>`` in a daemon thread.

    ``endpoint`` is the base URL (``OTEL_EXPORTER_OTLP_ENDPOINT`` style); ``traces_endpoint`` the full traces
    URL (``OTLPSpanExporter(endpoint=...)``).
    """

    handler_class = _Handler
    thread_name = "otlp-receiver"

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._exports: list[ReceivedExport] = []
        self._spans: list[dict[str, Any]] = []
        self._logs: list[dict[str, Any]] = []
        self._forced: list[int] = []
        super().__init__()

    @property
    def endpoint(self) -> str:
        """Base URL ``http://127.0.0.1:PORT`` (signal paths ``/v1/traces`` etc. are appended by exporters)."""
        return self.url

    @property
    def traces_endpoint(self) -> str:
        """Full URL for ``OTLPSpanExporter(endpoint=...)``."""
        return f"{self.endpoint}/v1/traces"

    # ------------------------------------------------------------------ failure injection

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` requests with ``status`` (they are still recorded, spans not decoded)."""
        with self._lock:
            self._forced.extend([status] * count)

    def _next_forced_status(self) -> int | None:
        with self._lock:
            return self._forced.pop(0) if self._forced else None

    # ------------------------------------------------------------------ received data

    def _store_export(self, export: ReceivedExport | None, spans: list[dict[str, Any]] | None) -> None:
        with self._lock:
            if export is not None:
                self._exports.append(export)
            if spans:
                self._spans.extend(spans)
            self._lock.notify_all()

    def _store_logs(self, records: list[dict[str, Any]]) -> None:
        with self._lock:
            self._logs.extend(records)
            self._lock.notify_all()

    @property
    def log_records(self) -> list[dict[str, Any]]:
        """Every log record decoded so far (protobuf ``/v1/logs``), in arrival order."""
        with self._lock:
            return list(self._logs)

    @property
    def exports(self) -> list[ReceivedExport]:
        """Every request received (any path), in arrival order."""
        with self._lock:
            return list(self._exports)

    @property
    def raw_bodies(self) -> list[bytes]:
        """The decompressed body of every request, for byte-level scans."""
        with self._lock:
            return [e.body for e in self._exports]

    @property
    def spans(self) -> list[dict[str, Any]]:
        """Every span decoded so far, in arrival order."""
        with self._lock:
            return list(self._spans)

    def spans_named(self, name: str) -> list[dict[str, Any]]:
        return [s for s in self.spans if s["name"] == name]

    def wait_for_spans(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``n`` spans arrived; return them all. Raises ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._spans) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"expected {n} spans within {timeout}s, received {len(self._spans)}")
                self._lock.wait(remaining)
            return list(self._spans)

    def clear(self) -> None:
        """Forget everything received."""
        with self._lock:
            self._exports.clear()
            self._spans.clear()
            self._logs.clear()
