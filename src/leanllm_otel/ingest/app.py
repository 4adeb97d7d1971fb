"""The ingest service's ASGI application (Starlette).

Routes:

- ``POST /v1/events``: the LeanLLM service protocol. Body ``{"events": [LLMEvent, ...]}`` (JSON, optionally
  gzip); answer ``{"accepted": n, "dropped": m, "errors": [...]}``. Events that fail validation are dropped
  and counted; a body that is not such an object is a 400.
- ``POST /v1/traces``: OTLP/HTTP traces, binary protobuf (``application/x-protobuf``) or OTLP JSON
  (``application/json``). LLM spans become events; the answer is an ``ExportTraceServiceResponse`` in the
  request's encoding, with ``partial_success`` when spans were rejected; errors carry a ``google.rpc.Status``.
- ``GET /healthz``.

Every POST needs ``Authorization: Bearer <token>`` when the app has a token (401 otherwise). Bodies larger
than ``max_body_bytes`` (on the wire or after gunzip) get 413; a failing store gets 503 with ``Retry-After``
so well-behaved exporters retry. Writes are idempotent on the event id, so replays are harmless. No request
can crash the service: unexpected errors become a 500 and are logged.
"""

from __future__ import annotations

import hmac
import json
import logging
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from leanllm_otel.event import LLMEvent
from leanllm_otel.exporters.delivery import PermanentError
from leanllm_otel.ingest.otlp import (
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_PROTOBUF,
    OTLPPayloadError,
    decode_request,
    encode_response,
    encode_status,
    events_from_request,
)

__all__ = ["DEFAULT_MAX_BODY_BYTES", "EventSink", "create_app"]

_logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
_MAX_ERRORS = 5
_STORE_RETRY_AFTER_S = "5"

# google.rpc.Code values used in OTLP error bodies
_RPC_INVALID_ARGUMENT = 3
_RPC_RESOURCE_EXHAUSTED = 8
_RPC_INTERNAL = 13
_RPC_UNAVAILABLE = 14
_RPC_UNAUTHENTICATED = 16


class EventSink(Protocol):
    """Where accepted events go. ``write`` must be idempotent on ``event_id`` and may block (runs in a thread)."""

    def write(self, events: Sequence[LLMEvent]) -> None: ...


class _Rejection(Exception):
    """An answer other than success, decided while reading or parsing the request."""

    def __init__(self, status: int, reason: str, rpc_code: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.rpc_code = rpc_code
        self.headers = headers or {}


@dataclass(frozen=True)
class _Settings:
    sink: EventSink
    token: bytes | None
    max_body_bytes: int


def create_app(sink: EventSink, *, token: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Starlette:
    """The ingest ASGI app writing into ``sink``; ``token`` None disables authentication."""
    settings = _Settings(
        sink=sink,
        token=token.encode("utf-8") if token else None,
        max_body_bytes=max(1024, int(max_body_bytes)),
    )

    async def events_endpoint(request: Request) -> Response:
        return await _guarded(request, settings, _handle_events, _events_error)

    async def traces_endpoint(request: Request) -> Response:
        return await _guarded(request, settings, _handle_traces, _traces_error)

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/v1/events", events_endpoint, methods=["POST"]),
            Route("/v1/traces", traces_endpoint, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ]
    )


_Handler = Callable[[Request, _Settings], Awaitable[Response]]
_ErrorBuilder = Callable[[Request, _Rejection], Response]


async def _guarded(request: Request, settings: _Settings, handler: _Handler, on_error: _ErrorBuilder) -> Response:
    try:
        _authenticate(request, settings.token)
        return await handler(request, settings)
    except _Rejection as rejection:
        if rejection.status >= 500:
            _logger.warning(
                "ingest: %s %s -> %d: %s", request.method, request.url.path, rejection.status, rejection.reason
            )
        else:
            _logger.info(
                "ingest: %s %s -> %d: %s", request.method, request.url.path, rejection.status, rejection.reason
            )
        return on_error(request, rejection)
    except Exception:
        _logger.exception("ingest: unexpected error on %s %s", request.method, request.url.path)
        return on_error(request, _Rejection(500, "internal error", _RPC_INTERNAL))


# --- request reading ---------------------------------------------------------------------------------------


def _authenticate(request: Request, token: bytes | None) -> None:
    if token is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    presented = credentials.strip().encode("utf-8")
    # compare_digest on every path: the time taken must not depend on how much of the token matched.
    valid = hmac.compare_digest(presented, token)
    if scheme.lower() != "bearer" or not valid:
        raise _Rejection(
            401,
            "missing bearer token" if not header else "invalid bearer token",
            _RPC_UNAUTHENTICATED,
            {"WWW-Authenticate": 'Bearer realm="leanllm-otel"'},
        )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _Rejection(413, f"body larger than {limit} bytes", _RPC_RESOURCE_EXHAUSTED)
        except ValueError:
            raise _Rejection(400, "invalid Content-Length", _RPC_INVALID_ARGUMENT) from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Rejection(413, f"body larger than {limit} bytes", _RPC_RESOURCE_EXHAUSTED)
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return _gunzip(body, limit)
    raise _Rejection(415, f"unsupported Content-Encoding {encoding!r} (use gzip or none)", _RPC_INVALID_ARGUMENT)


def _gunzip(body: bytes, limit: int) -> bytes:
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        # max_length bounds the output: a small gzip bomb cannot make us allocate more than the limit.
        data = decompressor.decompress(body, limit + 1)
    except zlib.error as exc:
        raise _Rejection(400, f"invalid gzip body: {exc}", _RPC_INVALID_ARGUMENT) from None
    if len(data) > limit or decompressor.unconsumed_tail:
        raise _Rejection(413, f"decompressed body larger than {limit} bytes", _RPC_RESOURCE_EXHAUSTED)
    if not decompressor.eof:
        raise _Rejection(400, "truncated gzip body", _RPC_INVALID_ARGUMENT)
    return data


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def _write(settings: _Settings, events: Sequence[LLMEvent]) -> None:
    if not events:
        return
    try:
        await run_in_threadpool(settings.sink.write, events)
    except PermanentError as exc:  # the database refuses these rows: retrying cannot help
        _logger.warning("ingest: store refused %d event(s): %s", len(events), exc.reason)
        raise _Rejection(400, f"rejected by the event store: {exc.reason}"[:300], _RPC_INVALID_ARGUMENT) from None
    except Exception as exc:
        _logger.warning("ingest: store write of %d event(s) failed: %s", len(events), type(exc).__name__)
        raise _Rejection(
            503, "event store unavailable", _RPC_UNAVAILABLE, {"Retry-After": _STORE_RETRY_AFTER_S}
        ) from None


# --- POST /v1/events ---------------------------------------------------------------------------------------


async def _handle_events(request: Request, settings: _Settings) -> Response:
    media = _media_type(request)
    if media not in ("", CONTENT_TYPE_JSON):
        raise _Rejection(415, f"unsupported Content-Type {media!r} (use application/json)", _RPC_INVALID_ARGUMENT)
    body = await _read_body(request, settings.max_body_bytes)
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Rejection(400, f"invalid JSON: {exc}", _RPC_INVALID_ARGUMENT) from None
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise _Rejection(400, 'body must be a JSON object {"events": [...]}', _RPC_INVALID_ARGUMENT)

    events: dict[str, LLMEvent] = {}  # a replay inside one request is written once
    errors: list[str] = []
    dropped = 0
    for index, item in enumerate(document["events"]):
        problem = None
        if not isinstance(item, dict):
            problem = "not a JSON object"
        else:
            try:
                event = LLMEvent.model_validate(item)
            except ValidationError as exc:
                problem = "; ".join(
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)
                )[:300]
            else:
                events[event.event_id] = event
        if problem is not None:
            dropped += 1
            if len(errors) < _MAX_ERRORS:
                errors.append(f"events[{index}]: {problem}")
    await _write(settings, list(events.values()))
    answer: dict[str, Any] = {"accepted": len(document["events"]) - dropped, "dropped": dropped}
    if errors:
        answer["errors"] = errors
    return JSONResponse(answer)


def _events_error(_request: Request, rejection: _Rejection) -> Response:
    return JSONResponse(
        {"error": rejection.reason, "reason": rejection.reason},
        status_code=rejection.status,
        headers=rejection.headers,
    )


# --- POST /v1/traces (OTLP/HTTP) ---------------------------------------------------------------------------


def _otlp_json(request: Request) -> bool:
    return _media_type(request) == CONTENT_TYPE_JSON


async def _handle_traces(request: Request, settings: _Settings) -> Response:
    media = _media_type(request)
    if media not in (CONTENT_TYPE_PROTOBUF, CONTENT_TYPE_JSON):
        raise _Rejection(
            415,
            f"unsupported Content-Type {media!r} (use {CONTENT_TYPE_PROTOBUF} or {CONTENT_TYPE_JSON})",
            _RPC_INVALID_ARGUMENT,
        )
    json_encoded = media == CONTENT_TYPE_JSON
    body = await _read_body(request, settings.max_body_bytes)
    try:
        otlp_request = decode_request(body, json_encoded=json_encoded)
    except OTLPPayloadError as exc:
        raise _Rejection(400, str(exc)[:500], _RPC_INVALID_ARGUMENT) from None
    conversion = events_from_request(otlp_request)
    unique = {event.event_id: event for event in conversion.events}
    await _write(settings, list(unique.values()))
    message = "; ".join(conversion.errors)
    return Response(
        encode_response(rejected=conversion.rejected, message=message, json_encoded=json_encoded),
        media_type=CONTENT_TYPE_JSON if json_encoded else CONTENT_TYPE_PROTOBUF,
    )


def _traces_error(request: Request, rejection: _Rejection) -> Response:
    json_encoded = _otlp_json(request)
    return Response(
        encode_status(code=rejection.rpc_code, message=rejection.reason, json_encoded=json_encoded),
        status_code=rejection.status,
        headers=rejection.headers,
        media_type=CONTENT_TYPE_JSON if json_encoded else CONTENT_TYPE_PROTOBUF,
    )
