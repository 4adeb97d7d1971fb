"""The pieces of OpenTelemetry GenAI messages, from LiteLLM / OpenAI-shaped content: text, media, tool calls and
tool definitions. :mod:`leanllm_otel.processing.messages` assembles them into messages; the JSON encoding with a
size cap is :mod:`leanllm_otel.processing.capping`.

The shapes follow the semconv schemas for ``gen_ai.input.messages``, ``gen_ai.output.messages``,
``gen_ai.system_instructions`` and ``gen_ai.tool.definitions``::

    [{"role": "user", "parts": [{"type": "text", "content": "..."}]},
     {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "f", "arguments": {...}}]},
     {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": ...}]}]

Every piece of text passes through a :class:`PartPolicy` (the redaction mode), so raw content never lands in a
part unless the mode is ``full``. One deliberate departure from the schema: media (images, audio, files given
inline as base64) become ``{"type": "blob", "modality", "mime_type", "size"}`` without ``content``; the payload is
never exported, only its decoded size in bytes.
"""

from __future__ import annotations

import mimetypes
from typing import Any, Protocol

from leanllm_otel.access import get_field as get

Part = dict[str, Any]
Message = dict[str, Any]

SYSTEM_ROLES = frozenset({"system", "developer"})
_TEXT_TYPES = frozenset({"text", "input_text", "output_text"})


class PartPolicy(Protocol):
    """How the redaction mode treats each piece of content (implemented by ``redaction.ModePolicy``).

    ``content=True`` marks conversation content (counted in the size attributes and scanned for findings);
    tool definitions pass ``content=False``.
    """

    @property
    def keeps_structure(self) -> bool:
        """Whether structured values (tool arguments, JSON schemas) keep their shape (full, redacted)."""
        ...

    def text(self, value: str, content: bool = True) -> str: ...

    def data(self, value: Any, content: bool = True) -> Any: ...

    def uri(self, value: str) -> str: ...


def _is_label(value: str) -> bool:
    return (
        0 < len(value) <= 64 and value.isascii() and value.replace("_", "").replace("-", "").replace(".", "").isalnum()
    )


def label(value: Any) -> str:
    """A part / tool ``type`` for export: identifier-like values as given, anything else ``"unknown"``."""
    text = "" if value is None else str(getattr(value, "value", value))
    return text if _is_label(text) else "unknown"


def identifier(value: Any, policy: PartPolicy) -> str:
    """A tool name: identifier-like names (what the APIs accept) as given; anything else through the policy."""
    if value is None:
        return ""
    text = str(value)
    return text if _is_label(text) else policy.text(text, content=False)


def plain(content: Any) -> Any:
    """A tool result's content as one value: text parts joined, anything else as given."""
    if isinstance(content, list) and content and all(get(p, "text") is not None for p in content):
        return "".join(str(get(p, "text")) for p in content)
    return content


# --- content parts ------------------------------------------------------------------------------------------------


def content_parts(content: Any, policy: PartPolicy) -> list[Part]:
    """A message ``content``: a string, or a list of typed parts (text, image, audio, file, ...)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": policy.text(content)}] if content else []
    if isinstance(content, list):
        parts = []
        for item in content:
            part = content_part(item, policy)
            if part is not None:
                parts.append(part)
        return parts
    return [{"type": "text", "content": policy.text(str(content))}]


def content_part(item: Any, policy: PartPolicy) -> Part | None:
    """One OpenAI / Responses / Anthropic-style content part as a semconv part."""
    if isinstance(item, str):
        return {"type": "text", "content": policy.text(item)}
    kind = get(item, "type")
    if kind in _TEXT_TYPES:
        text = get(item, "text")
        return {"type": "text", "content": policy.text(text if isinstance(text, str) else "")}
    if kind == "refusal":
        return {"type": "text", "content": policy.text(str(get(item, "refusal") or ""))}
    if kind in ("image_url", "input_image"):
        url = get(item, "image_url")
        if url is not None and not isinstance(url, str):
            url = get(url, "url")
        if isinstance(url, str):
            return media_from_url(url, "image", policy)
        return _file_ref(get(item, "file_id"), "image")
    if kind == "input_audio":
        audio = get(item, "input_audio")
        fmt = get(audio, "format")
        return blob(get(audio, "data"), "audio", f"audio/{fmt}" if fmt else None)
    if kind in ("file", "input_file"):
        file = get(item, "file") if kind == "file" else item
        data = get(file, "file_data")
        if isinstance(data, str):
            if data.startswith("data:"):
                return media_from_url(data, "document", policy)
            return blob(data, "document", _guess_mime(get(file, "filename")))
        url = get(file, "file_url")
        if isinstance(url, str):
            return media_from_url(url, "document", policy)
        return _file_ref(get(file, "file_id"), "document")
    if kind in ("image", "document", "audio"):  # Anthropic-style {"source": {"type": "base64" | "url", ...}}
        source = get(item, "source")
        modality = "document" if kind == "document" else str(kind)
        if get(source, "type") == "base64":
            return blob(get(source, "data"), modality, get(source, "media_type"))
        url = get(source, "url")
        if isinstance(url, str):
            return media_from_url(url, modality, policy)
        return {"type": "blob", "modality": modality}
    if kind == "tool_use":  # Anthropic: a tool call inside an assistant message's content
        return tool_call_part(get(item, "id"), get(item, "name"), get(item, "input"), policy)
    if kind == "tool_result":  # Anthropic: a tool's answer inside a user message's content
        call_id = get(item, "tool_use_id")
        return {
            "type": "tool_call_response",
            "id": None if call_id is None else str(call_id),
            "response": policy.data(plain(get(item, "content"))),
        }
    if kind in ("thinking", "reasoning"):
        text = get(item, "thinking") or get(item, "text")
        return {"type": "reasoning", "content": policy.text(text if isinstance(text, str) else "")}
    if kind == "redacted_thinking":
        return {"type": "reasoning", "content": ""}
    # Unknown part types keep their type only: their fields may carry payloads we cannot vouch for.
    return {"type": label(kind)}


def media_from_url(url: str, modality: str, policy: PartPolicy) -> Part:
    """A ``data:`` URL becomes a blob (type and size, never the payload); any other URL a ``uri`` part."""
    if url.startswith("data:"):
        comma = url.find(",", 0, 512)
        header = url[5:comma] if comma >= 0 else ""
        mime = header.split(";", 1)[0] or None
        start = comma + 1 if comma >= 0 else len(url)
        size = _b64_size(url, start) if ";base64" in header else len(url) - start
        part: Part = {"type": "blob", "modality": _modality(mime, modality)}
        if mime:
            part["mime_type"] = mime
        part["size"] = size
        return part
    part = {"type": "uri", "modality": modality}
    mime = _guess_mime(url.split("?", 1)[0].split("#", 1)[0])
    if mime:
        part["mime_type"] = mime
    part["uri"] = policy.uri(url)
    return part


def blob(data: Any, modality: str, mime: Any) -> Part:
    """Inline media as ``{"type": "blob", "modality", "mime_type", "size"}``: the decoded size, never the payload."""
    part: Part = {"type": "blob", "modality": _modality(mime if isinstance(mime, str) else None, modality)}
    if isinstance(mime, str) and mime:
        part["mime_type"] = mime
    if isinstance(data, str):
        if data.startswith("data:"):
            comma = data.find(",", 0, 512)
            data_start = comma + 1 if comma >= 0 else len(data)
            part["size"] = _b64_size(data, data_start)
        else:
            part["size"] = _b64_size(data, 0)
    elif isinstance(data, (bytes, bytearray)):
        part["size"] = len(data)
    return part


def _file_ref(file_id: Any, modality: str) -> Part:
    part: Part = {"type": "file", "modality": modality}
    if isinstance(file_id, str):
        part["file_id"] = file_id
    return part


def _b64_size(text: str, start: int) -> int:
    """Decoded size of the base64 payload ``text[start:]`` without decoding (or copying) it."""
    n = len(text) - start
    if n <= 0:
        return 0
    padding = 0
    if text.endswith("=="):
        padding = 2
    elif text.endswith("="):
        padding = 1
    return max(0, n * 3 // 4 - padding)


def _modality(mime: str | None, default: str) -> str:
    if mime:
        major = mime.split("/", 1)[0].lower()
        if major in ("image", "audio", "video"):
            return major
    return default


def _guess_mime(name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return None
    return mimetypes.guess_type(name, strict=False)[0]


# --- tool calls ---------------------------------------------------------------------------------------------------


def tool_call_part(call_id: Any, name: Any, arguments: Any, policy: PartPolicy) -> Part:
    """``{"type": "tool_call", "id", "name", "arguments"}`` (arguments parsed from JSON text when they parse)."""
    return {
        "type": "tool_call",
        "id": None if call_id is None else str(call_id),
        "name": identifier(name, policy),
        "arguments": None if arguments is None else policy.data(arguments),
    }


def assistant_parts(message: Any, policy: PartPolicy) -> list[Part]:
    """An assistant message (request history or response choice): reasoning, content, tool calls, media."""
    parts: list[Part] = []
    reasoning = get(message, "reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        parts.append({"type": "reasoning", "content": policy.text(reasoning)})
    parts.extend(content_parts(get(message, "content"), policy))
    for call in get(message, "tool_calls") or ():
        function = get(call, "function")
        parts.append(tool_call_part(get(call, "id"), get(function, "name"), get(function, "arguments"), policy))
    function_call = get(message, "function_call")
    if function_call is not None:
        parts.append(tool_call_part(None, get(function_call, "name"), get(function_call, "arguments"), policy))
    audio = get(message, "audio")
    if audio is not None and get(audio, "data") is not None:
        parts.append(blob(get(audio, "data"), "audio", None))
    for image in get(message, "images") or ():
        url = get(get(image, "image_url"), "url")
        if isinstance(url, str):
            parts.append(media_from_url(url, "image", policy))
    return parts


def responses_call(item: Any, policy: PartPolicy) -> Part:
    arguments = get(item, "arguments")
    if arguments is None:
        arguments = get(item, "input")  # custom tool calls carry free-form input
    return tool_call_part(get(item, "call_id") or get(item, "id"), get(item, "name"), arguments, policy)


def reasoning_summary(item: Any, policy: PartPolicy) -> list[Part]:
    parts: list[Part] = []
    for summary in get(item, "summary") or ():
        text = get(summary, "text")
        if isinstance(text, str) and text:
            parts.append({"type": "reasoning", "content": policy.text(text)})
    return parts


# --- tool definitions ---------------------------------------------------------------------------------------------


def tool_definitions(tools: Any, policy: PartPolicy) -> list[dict[str, Any]]:
    """``tools`` / legacy ``functions`` / Responses tools as semconv tool definitions."""
    if not isinstance(tools, (list, tuple)):
        return []
    definitions: list[dict[str, Any]] = []
    for tool in tools:
        kind = get(tool, "type") or "function"
        function = get(tool, "function")
        source = function if function is not None else tool
        name = get(source, "name") or kind
        definition: dict[str, Any] = {"type": label(kind), "name": identifier(name, policy)}
        description = get(source, "description")
        if isinstance(description, str):
            definition["description"] = policy.text(description, content=False)
        parameters = get(source, "parameters")
        if parameters is not None and policy.keeps_structure:
            definition["parameters"] = policy.data(parameters, content=False)
        definitions.append(definition)
    return definitions
