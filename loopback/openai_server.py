"""A loopback OpenAI-compatible HTTP server for tests.

Behaviour is chosen per request by directives in the *model name*, so tests drive it through LiteLLM with
nothing but ``model="openai/<directives>"`` (LiteLLM strips the ``openai/`` prefix before sending). Directives
may be combined, e.g. ``"openai/chunks-5-gap-20"``. The ``X-Mock-Behaviour`` request header is read with the
same syntax and adds to the model's directives.

================================  =====================================================================
directive                         effect
================================  =====================================================================
``err-<status>``                  answer with that HTTP status and an OpenAI-shaped error body
                                  (429 carries ``Retry-After``, see ``ra-<s>``)
``err-400-context``               400, ``code: context_length_exceeded`` (OpenAI's body)
``err-400-policy``                400, ``code: content_policy_violation``
``slow-<seconds>``                sleep before answering (float allowed: ``slow-0.5``)
``chunks-<n>``                    stream ``n`` content chunks (default: ``OpenAIServer.default_chunks``)
``break-<n>``                     stream ``n`` content chunks, then close the connection mid-body
``gap-<ms>``                      sleep between stream chunks
``tools`` / ``tools-<n>``         answer with ``n`` tool calls (default 1) when the request has ``tools``
                                  (Responses API: ``function_call`` output items)
``cached-<n>``                    ``usage.prompt_tokens_details.cached_tokens`` (default 0)
``reasoning-<n>``                 ``usage.completion_tokens_details.reasoning_tokens`` (default 0); Responses API:
                                  also a ``reasoning`` output item with a summary
``ra-<seconds>``                  ``Retry-After`` value of a 429 (default ``OpenAIServer.retry_after``)
================================  =====================================================================

Images, speech, transcriptions and (Cohere-style) rerank are served by ``openai_media`` (see there).

The assistant's text is deterministic: ``"echo: " + <last user text>[:50]``, padded with ``"."`` to at least
the number of stream chunks so a stream and a non-stream call of the same model give the same text.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from . import openai_media
from ._loopback import LoopbackServer, QuietHandler, _HTTPServer

BEHAVIOUR_HEADER = "x-mock-behaviour"

_ERROR_BODIES: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request (mock 400)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided: sk-te***st (mock 401)."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden (mock 403)."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist (mock 404)."),
    408: ("timeout", None, "Request timed out (mock 408)."),
    409: ("invalid_request_error", None, "Conflict (mock 409)."),
    422: ("invalid_request_error", None, "Unprocessable entity (mock 422)."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests (mock 429)."),
    500: ("server_error", None, "The server had an error while processing your request (mock 500)."),
    502: ("server_error", None, "Bad gateway (mock 502)."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later (mock 503)."),
}

_CONTEXT_ERROR = (
    "invalid_request_error",
    "context_length_exceeded",
    "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. "
    "Please reduce the length of the messages.",
)
_POLICY_ERROR = (
    "invalid_request_error",
    "content_policy_violation",
    "Your request was rejected as a result of our safety system. Your prompt may contain text that is not "
    "allowed by our safety system.",
)


@dataclass(frozen=True)
class Behaviour:
    """What one request asks the server to do (parsed from the model name and the behaviour header)."""

    error_status: int | None = None
    error_kind: str | None = None
    slow: float = 0.0
    chunks: int | None = None
    break_after: int | None = None
    gap: float = 0.0
    tool_calls: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    retry_after: str | None = None


def parse_behaviour(*sources: str | None) -> Behaviour:
    """Parse directives out of model names / header values (see the module docstring)."""
    text = " ".join(s.lower() for s in sources if s)
    values: dict[str, Any] = {}
    if m := re.search(r"err-(\d{3})(?:-(context|policy))?", text):
        values["error_status"] = int(m.group(1))
        values["error_kind"] = m.group(2)
    if m := re.search(r"slow-(\d+(?:\.\d+)?)", text):
        values["slow"] = float(m.group(1))
    if m := re.search(r"chunks-(\d+)", text):
        values["chunks"] = int(m.group(1))
    if m := re.search(r"break-(\d+)", text):
        values["break_after"] = int(m.group(1))
    if m := re.search(r"gap-(\d+)", text):
        values["gap"] = int(m.group(1)) / 1000.0
    if m := re.search(r"tools(?:-(\d+))?", text):
        values["tool_calls"] = int(m.group(1) or 1)
    if m := re.search(r"cached-(\d+)", text):
        values["cached_tokens"] = int(m.group(1))
    if m := re.search(r"reasoning-(\d+)", text):
        values["reasoning_tokens"] = int(m.group(1))
    if m := re.search(r"ra-(\d+(?:\.\d+)?)", text):
        values["retry_after"] = m.group(1)
    return Behaviour(**values)


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    body: Any = None
    received_at: float = field(default_factory=time.time)

    @property
    def model(self) -> str | None:
        """The ``model`` field of a JSON body, if any."""
        return self.body.get("model") if isinstance(self.body, dict) else None


def _text_of(content: Any) -> str:
    """Plain text of a chat message content (string or list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict) and "text" in part)
    return ""


def _count_tokens(text: str) -> int:
    return max(1, len(text.split()))


def _split(text: str, parts: int) -> list[str]:
    """Split ``text`` into exactly ``parts`` non-empty pieces (``len(text) >= parts`` is required)."""
    size, extra = divmod(len(text), parts)
    pieces, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


class _ClientGone(Exception):
    """The peer closed the connection while we were writing."""


class _Handler(QuietHandler):
    server: _HTTPServer[OpenAIServer]

    # ------------------------------------------------------------------ plumbing

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_{self.server.owner.request_count}")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _write_chunk(self, data: bytes) -> None:
        try:
            self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        except OSError as exc:  # BrokenPipe / ConnectionReset: the client went away
            raise _ClientGone from exc

    def _sse(self, payload: Any, event: str | None = None) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        prefix = f"event: {event}\n" if event else ""
        self._write_chunk(f"{prefix}data: {data}\n\n".encode())

    def _end_stream(self) -> None:
        self._write_chunk(b"")  # zero-length chunk terminates the chunked body

    def _break_connection(self) -> None:
        """Close mid-body: the client sees an incomplete chunked response."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send_error_body(self, behaviour: Behaviour) -> None:
        status = behaviour.error_status or 500
        code: str | None
        if behaviour.error_kind == "context":
            kind, code, message = _CONTEXT_ERROR
        elif behaviour.error_kind == "policy":
            kind, code, message = _POLICY_ERROR
        else:
            kind, code, message = _ERROR_BODIES.get(status, ("server_error", None, f"Mock error {status}."))
        headers: dict[str, str] = {}
        if status == 429:
            headers["Retry-After"] = behaviour.retry_after or self.server.owner.retry_after
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        self._send_json(status, body, headers)

    # ------------------------------------------------------------------ dispatch

    def do_GET(self) -> None:
        self.server.owner._record(self, b"")
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        raw = self._read_body()
        content_type = self.headers.get("Content-Type") or ""
        try:
            if content_type.startswith("multipart/form-data"):
                body: Any = openai_media.parse_multipart(content_type, raw)
            else:
                body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        self.server.owner._record(self, raw, body)
        if not isinstance(body, dict):
            self._send_json(400, {"error": {"message": "body must be a JSON object", "type": "invalid_json"}})
            return
        behaviour = parse_behaviour(str(body.get("model", "")), self.headers.get(BEHAVIOUR_HEADER))
        if behaviour.slow:
            time.sleep(behaviour.slow)
        if behaviour.error_status:
            self._send_error_body(behaviour)
            return
        route = self.path.split("?", 1)[0].rstrip("/")
        handlers = {
            "/v1/chat/completions": self._chat,
            "/v1/completions": self._text_completion,
            "/v1/embeddings": self._embeddings,
            "/v1/responses": self._responses,
        }
        handler = handlers.get(route) or handlers.get("/v1" + route)  # accept api_base without /v1
        media = openai_media.ROUTES.get(route) or openai_media.ROUTES.get("/v1" + route)
        if handler is None and media is None:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        try:
            if media is not None:
                media(self, body)
            else:
                handler(body, behaviour)
        except _ClientGone:
            self.close_connection = True

    # ------------------------------------------------------------------ shared pieces

    def _reply_text(self, prompt: str, behaviour: Behaviour) -> str:
        text = "echo: " + prompt[:50]
        chunks = self._chunk_count(behaviour)
        return text + "." * max(0, chunks - len(text))

    def _chunk_count(self, behaviour: Behaviour) -> int:
        return max(1, behaviour.chunks or self.server.owner.default_chunks)

    def _usage(self, prompt_tokens: int, completion_tokens: int, behaviour: Behaviour) -> dict[str, Any]:
        prompt_tokens = max(prompt_tokens, behaviour.cached_tokens)
        completion_tokens += behaviour.reasoning_tokens
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": behaviour.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": behaviour.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _stream_pieces(self, pieces: list[Any], behaviour: Behaviour) -> Iterator[Any]:
        """Yield the pieces to send, honouring ``gap`` and ``break``; a break stops the generator early."""
        for index, piece in enumerate(pieces):
            if behaviour.break_after is not None and index >= behaviour.break_after:
                self._break_connection()
                return
            if index and behaviour.gap:
                time.sleep(behaviour.gap)
            yield piece
        if behaviour.break_after is not None:
            self._break_connection()

    # ------------------------------------------------------------------ /v1/chat/completions

    def _tool_calls(self, body: dict[str, Any], behaviour: Behaviour, prompt: str) -> list[dict[str, Any]]:
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
        if not behaviour.tool_calls or not tools:
            return []
        calls = []
        for i in range(behaviour.tool_calls):
            function = tools[i % len(tools)].get("function", {})
            properties = (function.get("parameters") or {}).get("properties") or {"query": {"type": "string"}}
            args: dict[str, Any] = {}
            for name, schema in properties.items():
                kind = schema.get("type") if isinstance(schema, dict) else None
                args[name] = {"integer": 1, "number": 1.5, "boolean": True}.get(str(kind), prompt[:20])
            calls.append(
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {"name": function.get("name", "tool"), "arguments": json.dumps(args)},
                }
            )
        return calls

    def _chat(self, body: dict[str, Any], behaviour: Behaviour) -> None:
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        user_texts = [_text_of(m.get("content")) for m in messages if m.get("role") == "user"]
        prompt = user_texts[-1] if user_texts else ""
        prompt_tokens = sum(_count_tokens(_text_of(m.get("content"))) for m in messages)
        model = str(body.get("model", ""))
        stream = bool(body.get("stream"))
        calls = self._tool_calls(body, behaviour, prompt)
        text = self._reply_text(prompt, behaviour)
        completion_tokens = sum(_count_tokens(c["function"]["arguments"]) for c in calls) if calls else None
        usage = self._usage(prompt_tokens, completion_tokens or _count_tokens(text), behaviour)
        finish = "tool_calls" if calls else "stop"
        ident = f"chatcmpl-mock{next(self.server.owner._ids)}"
        created = int(time.time())
        if not stream:
            message: dict[str, Any] = {
                "role": "assistant",
                "content": None if calls else text,
                "refusal": None,
            }
            if calls:
                message["tool_calls"] = calls
            self._send_json(
                200,
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_mock",
                    "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                    "usage": usage,
                },
            )
            return

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            out: dict[str, Any] = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_mock",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                out["usage"] = None
            return out

        if calls:
            deltas: list[dict[str, Any]] = []
            for index, call in enumerate(calls):
                head = {"index": index, "id": call["id"], "type": "function"}
                deltas.append(
                    {"tool_calls": [{**head, "function": {"name": call["function"]["name"], "arguments": ""}}]}
                )
                args = call["function"]["arguments"]
                for piece in _split(args, min(3, len(args))):
                    deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        else:
            deltas = [{"content": piece} for piece in _split(text, self._chunk_count(behaviour))]

        self._start_stream()
        self._sse(chunk({"role": "assistant", "content": None if calls else ""}))
        for delta in self._stream_pieces(deltas, behaviour):
            self._sse(chunk(delta))
        if behaviour.break_after is not None:
            return
        self._sse(chunk({}, finish))
        if include_usage:
            self._sse({**chunk({}), "choices": [], "usage": usage})
        self._sse("[DONE]")
        self._end_stream()

    # ------------------------------------------------------------------ /v1/completions

    def _text_completion(self, body: dict[str, Any], behaviour: Behaviour) -> None:
        prompt_field = body.get("prompt", "")
        prompt = prompt_field[-1] if isinstance(prompt_field, list) and prompt_field else prompt_field
        prompt = prompt if isinstance(prompt, str) else json.dumps(prompt)
        model = str(body.get("model", ""))
        text = self._reply_text(prompt, behaviour)
        usage = self._usage(_count_tokens(prompt), _count_tokens(text), behaviour)
        ident = f"cmpl-mock{next(self.server.owner._ids)}"
        created = int(time.time())

        def payload(piece: str, finish: str | None) -> dict[str, Any]:
            return {
                "id": ident,
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": [{"text": piece, "index": 0, "logprobs": None, "finish_reason": finish}],
            }

        if not body.get("stream"):
            self._send_json(200, {**payload(text, "stop"), "usage": usage})
            return
        self._start_stream()
        for piece in self._stream_pieces(_split(text, self._chunk_count(behaviour)), behaviour):
            self._sse(payload(piece, None))
        if behaviour.break_after is not None:
            return
        self._sse(payload("", "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            self._sse({**payload("", None), "choices": [], "usage": usage})
        self._sse("[DONE]")
        self._end_stream()

    # ------------------------------------------------------------------ /v1/embeddings

    def _embeddings(self, body: dict[str, Any], behaviour: Behaviour) -> None:
        raw_input = body.get("input", "")
        if isinstance(raw_input, str) or (isinstance(raw_input, list) and raw_input and isinstance(raw_input[0], int)):
            inputs: list[Any] = [raw_input]
        else:
            inputs = list(raw_input) if isinstance(raw_input, list) else [raw_input]
        dims = int(body.get("dimensions") or self.server.owner.embedding_dimensions)
        data = []
        for index, item in enumerate(inputs):
            vector = embedding_for(item if isinstance(item, str) else json.dumps(item), dims)
            value: Any = vector
            if body.get("encoding_format") == "base64":
                value = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": value})
        tokens = sum(_count_tokens(i if isinstance(i, str) else " ".join(map(str, i))) for i in inputs)
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": str(body.get("model", "")),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    # ------------------------------------------------------------------ /v1/responses

    def _responses_extra_items(
        self, body: dict[str, Any], behaviour: Behaviour, prompt: str, n: int
    ) -> list[dict[str, Any]]:
        """``reasoning-<n>``: a reasoning item with a summary; ``tools``: function_call items for the tools sent."""
        items: list[dict[str, Any]] = []
        if behaviour.reasoning_tokens:
            summary = [{"type": "summary_text", "text": f"thinking about: {prompt[:30]}"}]
            items.append({"type": "reasoning", "id": f"rs_mock{n}", "summary": summary})
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
        for i in range(behaviour.tool_calls if tools else 0):
            tool = tools[i % len(tools)]
            items.append({
                "type": "function_call",
                "id": f"fc_mock{n}_{i}",
                "call_id": f"call_{i}",
                "name": tool.get("name", "tool"),
                "arguments": json.dumps({"query": prompt[:20]}),
                "status": "completed",
            })
        return items

    def _responses(self, body: dict[str, Any], behaviour: Behaviour) -> None:
        raw_input = body.get("input", "")
        if isinstance(raw_input, list):
            texts = [
                _text_of(item.get("content"))
                for item in raw_input
                if isinstance(item, dict) and item.get("role", "user") == "user"
            ]
            prompt = texts[-1] if texts else ""
        else:
            prompt = str(raw_input)
        model = str(body.get("model", ""))
        text = self._reply_text(prompt, behaviour)
        chat_usage = self._usage(_count_tokens(prompt), _count_tokens(text), behaviour)
        usage = {
            "input_tokens": chat_usage["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": behaviour.cached_tokens},
            "output_tokens": chat_usage["completion_tokens"],
            "output_tokens_details": {"reasoning_tokens": behaviour.reasoning_tokens},
            "total_tokens": chat_usage["total_tokens"],
        }
        n = next(self.server.owner._ids)
        resp_id, msg_id = f"resp_mock{n}", f"msg_mock{n}"
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        item = {
            "type": "message",
            "id": msg_id,
            "status": "completed",
            "role": "assistant",
            "content": [part],
        }
        extra_items = self._responses_extra_items(body, behaviour, prompt, n)
        response: dict[str, Any] = {
            "id": resp_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": model,
            "output": [*extra_items, item],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": usage,
        }
        if not body.get("stream"):
            self._send_json(200, response)
            return
        in_progress = {**response, "status": "in_progress", "output": [], "usage": None}
        seq = itertools.count()

        def event(kind: str, **fields: Any) -> None:
            self._sse({"type": kind, "sequence_number": next(seq), **fields}, event=kind)

        self._start_stream()
        event("response.created", response=in_progress)
        event("response.in_progress", response=in_progress)
        event(
            "response.output_item.added",
            output_index=0,
            item={**item, "status": "in_progress", "content": []},
        )
        event(
            "response.content_part.added",
            item_id=msg_id,
            output_index=0,
            content_index=0,
            part={**part, "text": ""},
        )
        for piece in self._stream_pieces(_split(text, self._chunk_count(behaviour)), behaviour):
            event("response.output_text.delta", item_id=msg_id, output_index=0, content_index=0, delta=piece,
                  logprobs=[])
        if behaviour.break_after is not None:
            return
        event("response.output_text.done", item_id=msg_id, output_index=0, content_index=0, text=text, logprobs=[])
        event("response.content_part.done", item_id=msg_id, output_index=0, content_index=0, part=part)
        event("response.output_item.done", output_index=0, item=item)
        for index, extra in enumerate(extra_items, start=1):
            event("response.output_item.added", output_index=index, item=extra)
            event("response.output_item.done", output_index=index, item=extra)
        event("response.completed", response=response)
        self._end_stream()


def embedding_for(text: str, dims: int) -> list[float]:
    """The deterministic vector the server returns for ``text`` (values in [-1, 1], float32-exact)."""
    digest = b""
    counter = 0
    while len(digest) < dims:
        digest += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    return [(b - 128) / 128 for b in digest[:dims]]


class OpenAIServer(LoopbackServer["OpenAIServer"]):
    """OpenAI-compatible server on ``127.0.0.1:<free port>`` running in a daemon thread.

    Use as a context manager or call :meth:`start` / :meth:`stop`. ``base_url`` is ``http://127.0.0.1:PORT/v1``
    (pass it as LiteLLM's ``api_base``). Every request is recorded in :attr:`requests`.
    """

    handler_class = _Handler
    thread_name = "mock-openai"

    def __init__(self, default_chunks: int = 3, retry_after: str = "1", embedding_dimensions: int = 8) -> None:
        self.default_chunks = default_chunks
        self.retry_after = retry_after
        self.embedding_dimensions = embedding_dimensions
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        super().__init__()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: what an OpenAI client / LiteLLM ``api_base`` expects."""
        return f"{self.url}/v1"

    # ------------------------------------------------------------------ recorded requests

    def _record(self, handler: BaseHTTPRequestHandler, raw: bytes, body: Any = None) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self._requests.append(RecordedRequest(handler.command, handler.path, headers, raw, body))

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise AssertionError("the mock OpenAI server has received no request")
            return self._requests[-1]

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """Requests whose path (without query) ends with ``path``, e.g. ``"/chat/completions"``."""
        return [r for r in self.requests if r.path.split("?", 1)[0].endswith(path)]

    def clear(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()
