"""The ingest service's ASGI application (Starlette).

Routes:

- ``POST /v1/events``: the LeanLLM service protocol. Body ``{"events": [LLMEvent, ...]}`` (``application/json``,
  optionally gzip); answer ``{"accepted": n, "dropped": m, "errors": ["events[i]: reason", ...]}``. Every valid
  event is stored; an invalid one, or one the store refuses, is dropped and named with its reason. A body that is
  not such an object is a 400.
- ``POST /v1/traces``: OTLP/HTTP traces, binary protobuf (``application/x-protobuf``) or OTLP JSON
  (``application/json``). LLM spans become events; the answer is an ``ExportTraceServiceResponse`` in the
  request's encoding, whose ``partial_success`` counts the rejected spans and gives each one's reason; errors
  carry a ``google.rpc.Status``.
- ``GET /healthz``.

Every POST needs ``Authorization: Bearer <token>`` when the app has a token (401 otherwise) and one of the
content types above (415 otherwise: a browser's no-cors ``fetch`` cannot send them). Bodies larger than
``max_body_bytes`` (on the wire or after gunzip) get 413; more than ``max_concurrent_requests`` at once get 503;
a failing store gets 503 with ``Retry-After`` so well-behaved exporters retry. Decoding and conversion run off
the event loop, so a large request never stalls ``/healthz`` or other clients. Event ids are validated (1 to 256
characters) and the first write of an id wins, within a request and across requests, so replays are harmless.
Reasons name the field at fault, never its value (a value may be a prompt), in answers and in the log. No
request can crash the service: unexpected errors become a 500 and are logged.
"""

from __future__ import annotations

import hmac
import logging
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from leanllm_otel.delivery_errors import PermanentError
from leanllm_otel.event import LLMEvent
from leanllm_otel.ingest.events import PayloadError, parse_events
from leanllm_otel.ingest.otlp import (
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_PROTOBUF,
    OTLPPayloadError,
    TraceConversion,
    decode_request,
    encode_response,
    encode_status,
    events_from_request,
)

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_CONCURRENT_REQUESTS", "EventSink", "create_app"]

_logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_CONCURRENT_REQUESTS = 32
DEFAULT_BODY_TIMEOUT_S = 60.0
_MAX_ERRORS = 100  # per-event reasons in one answer (the counts are exact, beyond this the text is a sample)
_STORE_RETRY_AFTER_S = "5"
_BUSY_RETRY_S = "1"

# google.rpc.Code values used in OTLP error bodies
_RPC_INVALID_ARGUMENT = 3
_RPC_RESOURCE_EXHAUSTED = 8
_RPC_INTERNAL = 13
_RPC_UNAVAILABLE = 14
_RPC_UNAUTHENTICATED = 16


class EventSink(Protocol):
    """Where accepted events go. ``write`` must be idempotent on ``event_id`` (the first write of an id wins) and
    may block (it runs in a thread). It returns the events it refused as (index, reason), or None when it stored
    them all; it raises only when the store is unavailable."""

    def write(self, events: Sequence[LLMEvent]) -> Sequence[tuple[int, str]] | None: ...


class _Rejection(Exception):
    """An answer other than success, decided while reading or parsing the request."""

    def __init__(self, status: int, reason: str, rpc_code: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.rpc_code = rpc_code
        self.headers = headers or {}


class _Limiter:
    """Requests in flight (the event loop's thread only touches it, so no lock)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def acquire(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active -= 1


@dataclass(frozen=True)
class _Settings:
    sink: EventSink
    token: bytes | None
    max_body_bytes: int
    limiter: _Limiter
    body_timeout_s: float


def create_app(
    sink: EventSink,
    *,
    token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS,
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
) -> Starlette:
    """The ingest ASGI app writing into ``sink``; ``token`` None disables authentication."""
    settings = _Settings(
        sink=sink,
        token=token.encode("utf-8") if token else None,
        max_body_bytes=max(1024, int(max_body_bytes)),
        limiter=_Limiter(max(1, int(max_concurrent_requests))),
        body_timeout_s=max(0.1, float(body_timeout_s)),
    )

    async def events_endpoint(request: Request) -> Response:
        return await _guarded(request, settings, _handle_events, _events_error, (CONTENT_TYPE_JSON,))

    async def traces_endpoint(request: Request) -> Response:
        media = (CONTENT_TYPE_PROTOBUF, CONTENT_TYPE_JSON)
        return await _guarded(request, settings, _handle_traces, _traces_error, media)

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/v1/events", events_endpoint, methods=["POST"]),
            Route("/v1/traces", traces_endpoint, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ]
    )


_Handler = Callable[[Request, _Settings, str], Awaitable[Response]]
_ErrorBuilder = Callable[[Request, _Rejection], Response]


async def _guarded(
    request: Request, settings: _Settings, handler: _Handler, on_error: _ErrorBuilder, media_types: Sequence[str]
) -> Response:
    try:
        _authenticate(request, settings.token)
        media = _require_media(request, media_types)
        if not settings.limiter.acquire():  # after authentication: only a client with the token can take a slot
            raise _Rejection(503, "too many concurrent requests", _RPC_UNAVAILABLE, {"Retry-After": _BUSY_RETRY_S})
        try:
            return await handler(request, settings, media)
        finally:
            settings.limiter.release()
    except _Rejection as rejection:
        level = logging.WARNING if rejection.status >= 500 else logging.INFO
        _logger.log(
            level, "ingest: %s %s -> %d: %s", request.method, request.url.path, rejection.status, rejection.reason
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


async def _read_body(request: Request, settings: _Settings) -> bytes:
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _Rejection(413, f"body larger than {limit} bytes", _RPC_RESOURCE_EXHAUSTED)
        except ValueError:
            raise _Rejection(400, "invalid Content-Length", _RPC_INVALID_ARGUMENT) from None
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity", "gzip"):
        raise _Rejection(
            415, f"unsupported Content-Encoding {_shown(encoding)} (use gzip or none)", _RPC_INVALID_ARGUMENT
        )
    chunks: list[bytes] = []
    size = 0
    try:
        with anyio.fail_after(settings.body_timeout_s):  # a body trickled in one byte at a time holds a slot
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _Rejection(413, f"body larger than {limit} bytes", _RPC_RESOURCE_EXHAUSTED)
                chunks.append(chunk)
    except TimeoutError:
        raise _Rejection(
            408, f"body not received within {settings.body_timeout_s:g} s", _RPC_INVALID_ARGUMENT
        ) from None
    body = b"".join(chunks)
    return _gunzip(body, limit) if encoding == "gzip" else body


def _shown(header_value: str) -> str:
    """A header value for a reason: only when it is short, printable ASCII (it is the client's text)."""
    ok = header_value.isascii() and header_value.isprintable() and len(header_value) <= 64
    return repr(header_value) if ok else "(unreadable)"


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


def _require_media(request: Request, allowed: Sequence[str]) -> str:
    media = _media_type(request)
    if media not in allowed:
        raise _Rejection(
            415, f"unsupported Content-Type {_shown(media)} (use {' or '.join(allowed)})", _RPC_INVALID_ARGUMENT
        )
    return media


async def _write(settings: _Settings, events: Sequence[LLMEvent]) -> list[tuple[int, str]]:
    """Store ``events``; returns those the store refused (index into ``events``, reason)."""
    if not events:
        return []
    try:
        refused = await run_in_threadpool(settings.sink.write, events)
    except PermanentError as exc:  # a sink that refuses a batch as a whole: every event of it is named
        _logger.warning("ingest: store refused %d event(s): %s", len(events), exc.reason)
        return [(index, exc.reason) for index in range(len(events))]
    except Exception as exc:
        _logger.warning("ingest: store write of %d event(s) failed: %s", len(events), type(exc).__name__)
        raise _Rejection(
            503, "event store unavailable", _RPC_UNAVAILABLE, {"Retry-After": _STORE_RETRY_AFTER_S}
        ) from None
    refused = list(refused or ())
    if refused:
        _logger.warning("ingest: store refused %d of %d event(s): %s", len(refused), len(events), refused[-1][1])
    return refused


# --- POST /v1/events ---------------------------------------------------------------------------------------


async def _handle_events(request: Request, settings: _Settings, _media: str) -> Response:
    body = await _read_body(request, settings)
    try:
        batch = await run_in_threadpool(parse_events, body)
    except PayloadError as exc:
        raise _Rejection(400, str(exc), _RPC_INVALID_ARGUMENT) from None
    errors = list(batch.errors)
    for index, reason in await _write(settings, batch.events):
        errors.append((batch.positions[index], f"rejected by the event store: {reason}"))
    errors.sort()
    answer: dict[str, Any] = {"accepted": batch.total - len(errors), "dropped": len(errors)}
    if errors:
        answer["errors"] = [f"events[{index}]: {reason}"[:400] for index, reason in errors[:_MAX_ERRORS]]
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


async def _handle_traces(request: Request, settings: _Settings, media: str) -> Response:
    json_encoded = media == CONTENT_TYPE_JSON
    body = await _read_body(request, settings)
    try:
        conversion = await run_in_threadpool(_convert, body, json_encoded)
    except OTLPPayloadError as exc:
        raise _Rejection(400, str(exc)[:500], _RPC_INVALID_ARGUMENT) from None
    for index, reason in await _write(settings, conversion.events):
        conversion.reject(f"spans[{conversion.positions[index]}]: rejected by the event store: {reason}")
    return Response(
        encode_response(rejected=conversion.rejected, message="; ".join(conversion.errors), json_encoded=json_encoded),
        media_type=CONTENT_TYPE_JSON if json_encoded else CONTENT_TYPE_PROTOBUF,
    )


def _convert(body: bytes, json_encoded: bool) -> TraceConversion:
    return events_from_request(decode_request(body, json_encoded=json_encoded))


def _traces_error(request: Request, rejection: _Rejection) -> Response:
    json_encoded = _otlp_json(request)
    return Response(
        encode_status(code=rejection.rpc_code, message=rejection.reason, json_encoded=json_encoded),
        status_code=rejection.status,
        headers=rejection.headers,
        media_type=CONTENT_TYPE_JSON if json_encoded else CONTENT_TYPE_PROTOBUF,
    )
