"""Semconv parts for the call paths beyond chat, text completion, embeddings and the Responses API.

=====================  ==========================================  ================================================
``CallRecord.api``     input messages                              output messages
=====================  ==========================================  ================================================
``anthropic_messages``  ``messages`` (content blocks: text, image,  the response's content blocks (text,
                       ``tool_use``, ``tool_result``) + ``system``  ``tool_use`` -> tool_call, thinking -> reasoning)
``image_generation``   the prompt                                  one image part per generated image (``uri``, or
                                                                   a ``blob`` with its size), revised prompts as text
``speech``             the text to speak                           one audio ``blob`` (its size in bytes)
``transcription``      the audio file as a ``blob`` (+ prompt)     the transcribed text
``rerank``             the query and each document as text         none (scores are not content, like vectors)
=====================  ==========================================  ================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from leanllm_otel.access import get_field as get
from leanllm_otel.processing.messages import Conversation, chat_input, prompt_input
from leanllm_otel.processing.parts import Message, Part, PartPolicy, blob, content_parts, media_from_url
from leanllm_otel.processing.record import CallRecord

# Anthropic stop_reason -> semconv finish reason
_ANTHROPIC_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_call",
    "refusal": "content_filter",
}


def _anthropic_input(record: CallRecord, policy: PartPolicy) -> Conversation:
    conv = chat_input(record.messages or (), policy)
    system = record.extra.get("system")
    if system is not None:
        conv.system[:0] = content_parts(system, policy)
    return conv


def _image_input(record: CallRecord, policy: PartPolicy) -> Conversation:
    return prompt_input(record.prompt, policy) if record.prompt is not None else Conversation()


def _transcription_input(record: CallRecord, policy: PartPolicy) -> Conversation:
    conv = Conversation(count=1)
    parts: list[Part] = [_file_blob(record.extra.get("file"))]
    if isinstance(record.prompt, str) and record.prompt:
        parts.append({"type": "text", "content": policy.text(record.prompt)})
    conv.messages.append({"role": "user", "parts": parts})
    return conv


def _rerank_input(record: CallRecord, policy: PartPolicy) -> Conversation:
    conv = Conversation(count=1)
    parts: list[Part] = []
    if isinstance(record.prompt, str):
        parts.append({"type": "text", "content": policy.text(record.prompt)})
    for document in record.extra.get("documents") or ():
        conv.count += 1
        text = document if isinstance(document, str) else get(document, "text")
        parts.append({"type": "text", "content": policy.text(text)} if isinstance(text, str) else {"type": "document"})
    conv.messages.append({"role": "user", "parts": parts})
    return conv


def _file_blob(file: Any) -> Part:
    """An audio file as a blob part: its size when LiteLLM was given bytes, never its content."""
    name: Any = getattr(file, "name", None)
    data: Any = file
    # (filename, content[, content_type]); the record holds its tuples as lists (frozen at call end)
    if isinstance(file, (tuple, list)) and len(file) >= 2:
        name, data = file[0], file[1]
    part = blob(data if isinstance(data, (bytes, bytearray)) else None, "audio", None)
    if isinstance(name, str) and "." in name:
        part["mime_type"] = f"audio/{name.rsplit('.', 1)[1].lower()}"
    return part


def _anthropic_output(response: Any, policy: PartPolicy) -> list[Message]:
    content = get(response, "content")
    if not isinstance(content, list):
        return []
    reason = get(response, "stop_reason")
    finish = _ANTHROPIC_FINISH.get(str(reason), "" if reason is None else str(reason))
    return [{"role": "assistant", "parts": content_parts(content, policy), "finish_reason": finish}]


def _image_output(response: Any, policy: PartPolicy) -> list[Message]:
    parts: list[Part] = []
    for image in get(response, "data") or ():
        url = get(image, "url")
        if isinstance(url, str):
            parts.append(media_from_url(url, "image", policy))
        elif get(image, "b64_json") is not None:
            parts.append(blob(get(image, "b64_json"), "image", "image/png"))
        revised = get(image, "revised_prompt")
        if isinstance(revised, str) and revised:
            parts.append({"type": "text", "content": policy.text(revised)})
    return [{"role": "assistant", "parts": parts, "finish_reason": "stop"}] if parts else []


def _speech_output(response: Any, policy: PartPolicy) -> list[Message]:
    content = getattr(response, "content", None)
    if not isinstance(content, (bytes, bytearray)):
        return []
    return [{"role": "assistant", "parts": [blob(content, "audio", None)], "finish_reason": "stop"}]


def _transcription_output(response: Any, policy: PartPolicy) -> list[Message]:
    text = get(response, "text")
    if not isinstance(text, str):
        return []
    return [{"role": "assistant", "parts": [{"type": "text", "content": policy.text(text)}], "finish_reason": "stop"}]


def _no_output(response: Any, policy: PartPolicy) -> list[Message]:
    return []


_INPUTS: dict[str, Callable[[CallRecord, PartPolicy], Conversation]] = {
    "anthropic_messages": _anthropic_input,
    "image_generation": _image_input,
    "speech": _image_input,  # the text to speak, as a prompt
    "transcription": _transcription_input,
    "rerank": _rerank_input,
}
_OUTPUTS: dict[str, Callable[[Any, PartPolicy], list[Message]]] = {
    "anthropic_messages": _anthropic_output,
    "image_generation": _image_output,
    "speech": _speech_output,
    "transcription": _transcription_output,
    "rerank": _no_output,
}


def call_input(record: CallRecord, policy: PartPolicy) -> Conversation | None:
    """The input conversation of a call on one of the paths above; None for the chat-style paths."""
    build = _INPUTS.get(record.api)
    return None if build is None else build(record, policy)


def call_output(record: CallRecord, policy: PartPolicy) -> list[Message] | None:
    """The output messages of a completed (non-streamed) call on one of the paths above; None for the others."""
    build = _OUTPUTS.get(record.api)
    return None if build is None or record.chunks else build(record.response, policy)
