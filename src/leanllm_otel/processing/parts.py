"""LiteLLM / OpenAI-shaped requests and responses as OpenTelemetry GenAI JSON parts.

The shapes follow the semconv schemas for ``gen_ai.input.messages``, ``gen_ai.output.messages``,
``gen_ai.system_instructions`` and ``gen_ai.tool.definitions``::

    [{"role": "user", "parts": [{"type": "text", "content": "..."}]},
     {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "f", "arguments": {...}}]},
     {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": ...}]}]

Every piece of text passes through a :class:`PartPolicy` (the redaction mode), so raw content never lands in a
part unless the mode is ``full``. One deliberate departure from the schema: media (images, audio, files given
inline as base64) become ``{"type": "blob", "modality", "mime_type", "size"}`` without ``content``; the payload is
never exported, only its decoded size in bytes.

:func:`encode_capped` turns a list of messages / parts / tool definitions into a JSON string of at most ``cap``
characters by shortening the longest text slots inside the JSON (marked ``"truncated": true``), so the attribute
always parses.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

Part = dict[str, Any]
Message = dict[str, Any]

SYSTEM_ROLES = frozenset({"system", "developer"})
_ROLE_ALIASES = {"function": "tool", "model": "assistant", "human": "user", "ai": "assistant"}
_TEXT_TYPES = frozenset({"text", "input_text", "output_text"})
_FINISHED_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


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


def get(obj: Any, name: str) -> Any:
    """``obj[name]`` for mappings, ``obj.name`` for objects (LiteLLM's pydantic types); None when absent."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


@dataclass(slots=True)
class Conversation:
    """The input side of a call: system instructions apart from the other messages."""

    system: list[Part] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    count: int = 0  # messages / prompts / items as the caller gave them


# --- input ------------------------------------------------------------------------------------------------------


def chat_input(messages: Iterable[Any], policy: PartPolicy) -> Conversation:
    """Chat Completions ``messages``: system/developer messages become system instructions."""
    conv = Conversation()
    for message in messages:
        conv.count += 1
        _add_message(conv, message, policy)
    return conv


def _add_message(conv: Conversation, message: Any, policy: PartPolicy) -> None:
    role = str(get(message, "role") or "user")
    content = get(message, "content")
    if role in SYSTEM_ROLES:
        conv.system.extend(content_parts(content, policy))
        return
    role = _ROLE_ALIASES.get(role, role)
    if role == "tool":
        call_id = get(message, "tool_call_id")
        parts: list[Part] = [
            {
                "type": "tool_call_response",
                "id": None if call_id is None else str(call_id),
                "response": policy.data(_plain(content)),
            }
        ]
    elif role == "assistant":
        parts = assistant_parts(message, policy)
    else:
        parts = content_parts(content, policy)
    conv.messages.append({"role": role, "parts": parts})


def prompt_input(prompt: Any, policy: PartPolicy) -> Conversation:
    """A ``text_completion`` prompt or an ``embedding`` input: one user message per text (token ids: counts only)."""
    conv = Conversation()
    items = [prompt] if isinstance(prompt, str) or not isinstance(prompt, list) or _is_tokens(prompt) else prompt
    for item in items:
        conv.count += 1
        if isinstance(item, str):
            part: Part = {"type": "text", "content": policy.text(item)}
        elif _is_tokens(item):
            part = {"type": "tokens", "count": len(item)}
        else:
            part = {"type": type(item).__name__}
        conv.messages.append({"role": "user", "parts": [part]})
    return conv


def responses_input(value: Any, instructions: Any, policy: PartPolicy) -> Conversation:
    """Responses API ``input`` (a string or a list of items) and ``instructions``."""
    conv = Conversation()
    if isinstance(instructions, str) and instructions:
        conv.system.append({"type": "text", "content": policy.text(instructions)})
    if isinstance(value, str):
        conv.count = 1
        conv.messages.append({"role": "user", "parts": [{"type": "text", "content": policy.text(value)}]})
        return conv
    if not isinstance(value, list):
        return conv
    for item in value:
        conv.count += 1
        kind = get(item, "type")
        if get(item, "role") is not None and kind in (None, "message"):
            _add_message(conv, item, policy)
        elif kind in ("function_call", "custom_tool_call"):
            conv.messages.append({"role": "assistant", "parts": [_responses_call(item, policy)]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = get(item, "call_id")
            part = {
                "type": "tool_call_response",
                "id": None if call_id is None else str(call_id),
                "response": policy.data(_plain(get(item, "output"))),
            }
            conv.messages.append({"role": "tool", "parts": [part]})
        elif kind == "reasoning":
            conv.messages.append({"role": "assistant", "parts": _reasoning_summary(item, policy)})
        else:
            conv.messages.append({"role": "user", "parts": [{"type": label(kind)}]})
    return conv


def _is_tokens(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], int)


def _plain(content: Any) -> Any:
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
            "response": policy.data(_plain(get(item, "content"))),
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


def _responses_call(item: Any, policy: PartPolicy) -> Part:
    arguments = get(item, "arguments")
    if arguments is None:
        arguments = get(item, "input")  # custom tool calls carry free-form input
    return tool_call_part(get(item, "call_id") or get(item, "id"), get(item, "name"), arguments, policy)


def _reasoning_summary(item: Any, policy: PartPolicy) -> list[Part]:
    parts: list[Part] = []
    for summary in get(item, "summary") or ():
        text = get(summary, "text")
        if isinstance(text, str) and text:
            parts.append({"type": "reasoning", "content": policy.text(text)})
    return parts


# --- output -------------------------------------------------------------------------------------------------------


def response_output(response: Any, policy: PartPolicy) -> list[Message]:
    """Output messages of a completed call (chat, text completion, Responses API); embeddings have none."""
    if response is None:
        return []
    choices = get(response, "choices")
    if choices is None:
        output = get(response, "output")
        return responses_output(response, policy) if isinstance(output, list) else []
    messages: list[Message] = []
    for choice in choices:
        message = get(choice, "message")
        if message is not None:
            parts = assistant_parts(message, policy)
        else:
            text = get(choice, "text")
            parts = [{"type": "text", "content": policy.text(text)}] if isinstance(text, str) else []
        finish = get(choice, "finish_reason")
        messages.append({"role": "assistant", "parts": parts, "finish_reason": "" if finish is None else str(finish)})
    return messages


def responses_output(response: Any, policy: PartPolicy) -> list[Message]:
    """A Responses API response: its output items as one assistant message."""
    parts: list[Part] = []
    called = False
    for item in get(response, "output") or ():
        kind = get(item, "type")
        if kind == "message":
            parts.extend(content_parts(get(item, "content"), policy))
        elif kind in ("function_call", "custom_tool_call"):
            parts.append(_responses_call(item, policy))
            called = True
        elif kind == "reasoning":
            parts.extend(_reasoning_summary(item, policy))
        else:
            parts.append({"type": label(kind)})
    status = get(response, "status")
    if status == "failed":
        finish = "error"
    elif status == "incomplete":
        reason = get(get(response, "incomplete_details"), "reason")
        finish = "content_filter" if reason == "content_filter" else "length"
    else:
        finish = "tool_call" if called else "stop"
    return [{"role": "assistant", "parts": parts, "finish_reason": finish}]


@dataclass(slots=True)
class _ToolCallAcc:
    id: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _ChoiceAcc:
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: dict[int, _ToolCallAcc] = field(default_factory=dict)
    finish: str = ""

    def add_tool_delta(self, delta: Any) -> None:
        index = get(delta, "index")
        call_id = get(delta, "id")
        if not isinstance(index, int):
            # No index (some providers): a delta with an id starts a call, one without continues the last.
            index = len(self.calls) if (call_id or not self.calls) else max(self.calls)
        call = self.calls.get(index)
        if call is None:
            call = self.calls[index] = _ToolCallAcc()
        if call_id and call.id is None:
            call.id = str(call_id)
        function = get(delta, "function")
        name = get(function, "name")
        if name and call.name is None:
            call.name = str(name)
        arguments = get(function, "arguments")
        if isinstance(arguments, str):
            call.arguments.append(arguments)
        elif arguments is not None:
            call.arguments.append(json.dumps(arguments, default=str))


def stream_output(chunks: Iterable[Any], policy: PartPolicy) -> list[Message]:
    """Output messages assembled from streamed chunks: text deltas joined, tool-call deltas merged by index."""
    choices: dict[int, _ChoiceAcc] = {}
    responses_text: list[str] = []
    final: Any = None
    for chunk in chunks:
        kind = get(chunk, "type")
        if isinstance(kind, str):  # Responses API event (a str enum)
            if kind in _FINISHED_EVENTS:
                final = get(chunk, "response")
            elif kind == "response.output_text.delta":
                delta_text = get(chunk, "delta")
                if isinstance(delta_text, str):
                    responses_text.append(delta_text)
            continue
        for choice in get(chunk, "choices") or ():
            index = get(choice, "index")
            acc = choices.get(index if isinstance(index, int) else 0)
            if acc is None:
                acc = choices[index if isinstance(index, int) else 0] = _ChoiceAcc()
            delta = get(choice, "delta")
            if delta is not None:
                _add_delta(acc, delta)
            else:
                text = get(choice, "text")  # text_completion streams
                if isinstance(text, str):
                    acc.text.append(text)
            finish = get(choice, "finish_reason")
            if finish:
                acc.finish = str(finish)
    if final is not None:
        return responses_output(final, policy)
    if responses_text:
        text_part = {"type": "text", "content": policy.text("".join(responses_text))}
        return [{"role": "assistant", "parts": [text_part], "finish_reason": ""}]
    return [_assembled(choices[i], policy) for i in sorted(choices)]


def _add_delta(acc: _ChoiceAcc, delta: Any) -> None:
    content = get(delta, "content")
    if isinstance(content, str):
        acc.text.append(content)
    reasoning = get(delta, "reasoning_content")
    if isinstance(reasoning, str):
        acc.reasoning.append(reasoning)
    for call in get(delta, "tool_calls") or ():
        acc.add_tool_delta(call)
    function_call = get(delta, "function_call")
    if function_call is not None:
        acc.add_tool_delta({"index": 0, "function": function_call})


def _assembled(acc: _ChoiceAcc, policy: PartPolicy) -> Message:
    parts: list[Part] = []
    if acc.reasoning:
        parts.append({"type": "reasoning", "content": policy.text("".join(acc.reasoning))})
    if acc.text:
        text = "".join(acc.text)
        if text:
            parts.append({"type": "text", "content": policy.text(text)})
    for index in sorted(acc.calls):
        call = acc.calls[index]
        parts.append(tool_call_part(call.id, call.name, "".join(call.arguments), policy))
    return {"role": "assistant", "parts": parts, "finish_reason": acc.finish}


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


# --- capped JSON encoding -----------------------------------------------------------------------------------------

_SLOT_KEYS = ("content", "arguments", "response", "description", "parameters")
_TRUNCATED_OVERHEAD = len(',"truncated":true')
# Slots this short are never cut: a digest ("hmac-sha256:" + 64 hex) or a marker means nothing once cut.
_MIN_SLOT = 80
_SURROGATES = {code: 0xFFFD for code in range(0xD800, 0xE000)}


def dumps(value: Any) -> str:
    """Compact JSON, non-ASCII kept as is, always encodable as UTF-8 (lone surrogates become U+FFFD)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.translate(_SURROGATES)
    return text


def encode_capped(items: list[dict[str, Any]], cap: int) -> tuple[str, bool]:
    """``items`` as a JSON array of at most ``cap`` characters; True when anything was cut.

    The longest text slots (part ``content``, tool ``arguments`` / ``response``, tool ``description`` /
    ``parameters``) are shortened to a common length, largest first, and their container gets
    ``"truncated": true``. If that is not enough (thousands of tiny parts), the oldest items are dropped.
    ``items`` is modified in place.
    """
    text = dumps(items)
    if len(text) <= cap:
        return text, False
    for _ in range(4):
        slots = [slot for slot in _slots(items) if slot[2] > _MIN_SLOT]
        if not slots:
            break
        level = max(_MIN_SLOT, _water_level([size for _, _, size in slots], len(text) - cap))
        cut = False
        for container, key, size in slots:
            if size > level:
                container[key] = _cut(container[key], level, size)
                container["truncated"] = True
                cut = True
        text = dumps(items)
        if len(text) <= cap or not cut:
            break
    if len(text) <= cap:
        return text, True
    sizes = [len(dumps(item)) for item in items]
    total = len(text)
    drop = 0
    while drop < len(items) and total > cap:
        total -= sizes[drop] + (1 if drop < len(items) - 1 else 0)
        drop += 1
    del items[:drop]
    text = dumps(items)
    return (text if len(text) <= cap else "[]"), True


def _slots(items: list[dict[str, Any]]) -> Iterable[tuple[dict[str, Any], str, int]]:
    for item in items:
        parts = item.get("parts")
        containers = parts if isinstance(parts, list) else (item,)
        for container in containers:
            if not isinstance(container, dict):
                continue
            for key in _SLOT_KEYS:
                value = container.get(key)
                if value is not None:
                    yield container, key, len(dumps(value))


def _water_level(sizes: list[int], excess: int) -> int:
    """Largest L such that cutting every size above L down to L saves ``excess`` plus the markers' cost."""
    ordered = sorted(sizes, reverse=True)
    total = 0
    for k, size in enumerate(ordered, start=1):
        total += size
        level = (total - excess - _TRUNCATED_OVERHEAD * k) // k
        following = ordered[k] if k < len(ordered) else 0
        if level >= following:
            return max(0, level)
    return 0


def _cut(value: Any, level: int, encoded: int) -> str:
    """``value`` (as text) shortened so its JSON encoding is about ``level`` characters."""
    text = value if isinstance(value, str) else dumps(value)
    ratio = len(text) / encoded if encoded else 1.0
    return text[: max(0, int(level * ratio) - 3)] + "..."
