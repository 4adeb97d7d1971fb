"""A call's request and response as OpenTelemetry GenAI messages: the input side (:class:`Conversation`: system
instructions apart from the other messages) and the output side, for Chat Completions, text completions, the
Responses API and streamed chunks. The pieces inside a message come from :mod:`leanllm_otel.processing.parts`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from leanllm_otel.access import get_field as get
from leanllm_otel.processing.parts import (
    SYSTEM_ROLES,
    Message,
    Part,
    PartPolicy,
    assistant_parts,
    content_parts,
    label,
    plain,
    reasoning_summary,
    responses_call,
    tool_call_part,
)

_ROLE_ALIASES = {"function": "tool", "model": "assistant", "human": "user", "ai": "assistant"}
_FINISHED_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


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
                "response": policy.data(plain(content)),
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
            conv.messages.append({"role": "assistant", "parts": [responses_call(item, policy)]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = get(item, "call_id")
            part = {
                "type": "tool_call_response",
                "id": None if call_id is None else str(call_id),
                "response": policy.data(plain(get(item, "output"))),
            }
            conv.messages.append({"role": "tool", "parts": [part]})
        elif kind == "reasoning":
            conv.messages.append({"role": "assistant", "parts": reasoning_summary(item, policy)})
        else:
            conv.messages.append({"role": "user", "parts": [{"type": label(kind)}]})
    return conv


def _is_tokens(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], int)


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
            parts.append(responses_call(item, policy))
            called = True
        elif kind == "reasoning":
            parts.extend(reasoning_summary(item, policy))
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
