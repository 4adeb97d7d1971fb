"""The loopback provider's non-chat endpoints: images, speech, transcriptions (OpenAI-compatible) and rerank
(Cohere-compatible, what LiteLLM's ``cohere/`` rerank calls at ``{api_base}/v1/rerank``).

Every answer is deterministic in the request, so a test can predict it:

- ``POST /v1/images/generations``: ``n`` images; ``response_format: b64_json`` (and every ``gpt-image-*`` model,
  as OpenAI does) gives base64 PNG bytes (:func:`image_bytes`), otherwise a URL
  ``https://images.example.test/<i>.png``; each has ``revised_prompt = "revised: " + prompt``; usage counts the
  prompt's words.
- ``POST /v1/audio/speech``: binary ``audio/mpeg`` body, :func:`speech_bytes` of the input text.
- ``POST /v1/audio/transcriptions`` (multipart): ``{"text": "transcript of <n> bytes", "usage": {...}}``.
- ``POST /v1/rerank`` and ``/v2/rerank``: documents scored by how many query words they contain, best first
  (``top_n`` honoured); ``meta.tokens`` counts words; ``meta.billed_units.search_units`` is 1.
"""

from __future__ import annotations

import base64
import hashlib
import time
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Protocol


class _Reply(Protocol):
    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None: ...

    def send_response(self, code: int, message: str | None = None) -> None: ...

    def send_header(self, keyword: str, value: str) -> None: ...

    def end_headers(self) -> None: ...

    @property
    def wfile(self) -> Any: ...


def _words(text: str) -> int:
    return max(1, len(text.split()))


def image_bytes(prompt: str, index: int) -> bytes:
    """The PNG-looking payload of image ``index`` for ``prompt`` (64 bytes)."""
    return b"\x89PNG\r\n\x1a\n" + hashlib.sha256(f"{index}:{prompt}".encode()).digest() * 2 + b"\x00" * 24


def speech_bytes(text: str) -> bytes:
    """The MP3-looking payload spoken for ``text`` (``3 + 32 * (1 + len(text) // 16)`` bytes)."""
    digest = hashlib.sha256(text.encode()).digest()
    return b"ID3" + digest * (1 + len(text) // 16)


def parse_multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    """A ``multipart/form-data`` body as ``{field: text}``, files as ``{field: (filename, bytes)}``."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        fields[str(name)] = (filename, payload) if filename is not None else payload.decode()
    return fields


def images(handler: _Reply, body: dict[str, Any]) -> None:
    prompt = str(body.get("prompt", ""))
    count = int(body.get("n") or 1)
    data = []
    for index in range(count):
        item: dict[str, Any] = {"revised_prompt": f"revised: {prompt}"}
        if body.get("response_format") == "b64_json" or str(body.get("model", "")).startswith("gpt-image"):
            item["b64_json"] = base64.b64encode(image_bytes(prompt, index)).decode()
        else:
            item["url"] = f"https://images.example.test/{index}.png"
        data.append(item)
    tokens = _words(prompt)
    usage = {"input_tokens": tokens, "output_tokens": 10 * count, "total_tokens": tokens + 10 * count,
             "input_tokens_details": {"text_tokens": tokens, "image_tokens": 0}}
    handler._send_json(200, {"created": int(time.time()), "data": data, "usage": usage})


def speech(handler: _Reply, body: dict[str, Any]) -> None:
    audio = speech_bytes(str(body.get("input", "")))
    handler.send_response(200)
    handler.send_header("Content-Type", "audio/mpeg")
    handler.send_header("Content-Length", str(len(audio)))
    handler.end_headers()
    handler.wfile.write(audio)


def transcriptions(handler: _Reply, body: dict[str, Any]) -> None:
    file = body.get("file")
    size = len(file[1]) if isinstance(file, tuple) else 0
    text = f"transcript of {size} bytes"
    audio_tokens = 1 + size // 100
    usage = {"type": "tokens", "input_tokens": audio_tokens, "output_tokens": _words(text),
             "total_tokens": audio_tokens + _words(text),
             "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens}}
    handler._send_json(200, {"text": text, "usage": usage})


def rerank(handler: _Reply, body: dict[str, Any]) -> None:
    query_words = set(str(body.get("query", "")).lower().split())
    documents = [d if isinstance(d, str) else str((d or {}).get("text", "")) for d in body.get("documents") or []]
    scored = [
        (len(query_words & set(doc.lower().split())) / max(1, len(query_words)), index)
        for index, doc in enumerate(documents)
    ]
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    top_n = body.get("top_n")
    if isinstance(top_n, int):
        scored = scored[:top_n]
    results = [{"index": index, "relevance_score": score} for score, index in scored]
    if body.get("return_documents"):
        for result in results:
            result["document"] = {"text": documents[result["index"]]}
    tokens = _words(str(body.get("query", ""))) + sum(_words(d) for d in documents)
    meta = {"api_version": {"version": "1"}, "billed_units": {"search_units": 1},
            "tokens": {"input_tokens": tokens, "output_tokens": 0}}
    handler._send_json(200, {"id": f"rerank-mock-{len(documents)}", "results": results, "meta": meta})


ROUTES = {
    "/v1/images/generations": images,
    "/v1/audio/speech": speech,
    "/v1/audio/transcriptions": transcriptions,
    "/v1/rerank": rerank,
    "/v2/rerank": rerank,
}
