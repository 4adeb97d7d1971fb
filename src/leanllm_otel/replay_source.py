"""A stored event as the LiteLLM request that replays it: model, messages (from the stored GenAI parts) and the
original request parameters. Raises :class:`NotReplayableError` when the content was not stored replayably."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from leanllm_otel.event import LLMEvent

__all__ = [
    "NotReplayableError",
    "ReplayRequest",
    "litellm_model",
    "messages_from_event",
    "output_text",
    "replay_request",
]

# gen_ai.provider.name -> LiteLLM's routing prefix
_LITELLM_PREFIX: dict[str, str] = {
    "openai": "openai",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure_ai",
    "anthropic": "anthropic",
    "aws.bedrock": "bedrock",
    "aws.sagemaker": "sagemaker",
    "gcp.vertex_ai": "vertex_ai",
    "gcp.gemini": "gemini",
    "cohere": "cohere_chat",
    "mistral_ai": "mistral",
    "groq": "groq",
    "deepseek": "deepseek",
    "x_ai": "xai",
    "perplexity": "perplexity",
    "ibm.watsonx.ai": "watsonx",
}
_PARAMETERS = (
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "seed",
    "stop",
    "frequency_penalty",
    "presence_penalty",
    "n",
    "response_format",
)


class NotReplayableError(ValueError):
    """The stored event lacks what a replay needs (its content was not stored in a replayable form)."""


@dataclass(frozen=True)
class ReplayRequest:
    """What will be sent: LiteLLM ``model``, ``messages`` and keyword ``parameters``."""

    event_id: str
    model: str
    messages: list[dict[str, Any]]
    parameters: dict[str, Any] = field(default_factory=dict)
    lossy: bool = False  # content had redaction markers: the replay is not the original request


def _text_of_parts(parts: Iterable[Any], event_id: str) -> list[dict[str, Any]]:
    """OpenAI content parts from semconv parts (refusing truncated text and media stored without its data)."""
    content: list[dict[str, Any]] = []
    for part in parts:
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if part.get("truncated"):
            raise NotReplayableError(f"event {event_id}: stored content was truncated (raise max_content_chars)")
        if kind == "text":
            content.append({"type": "text", "text": str(part.get("content") or "")})
        elif kind == "uri" and isinstance(part.get("uri"), str) and part.get("modality", "image") == "image":
            content.append({"type": "image_url", "image_url": {"url": part["uri"]}})
        elif kind in ("blob", "file", "uri"):
            raise NotReplayableError(
                f"event {event_id}: a {part.get('modality') or kind} input was stored as a reference or size only"
            )
    return content


def _collapse(content: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if all(item["type"] == "text" for item in content):
        return "".join(item["text"] for item in content)
    return content


def _arguments_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def messages_from_event(event: LLMEvent) -> list[dict[str, Any]]:
    """The LiteLLM ``messages`` of a stored event (semconv parts, or OpenAI-shaped messages as stored)."""
    messages: list[dict[str, Any]] = []
    system = event.system_instructions
    if isinstance(system, list) and system:
        content = _text_of_parts(system, event.event_id)
        messages.append({"role": "system", "content": _collapse(content)})
    stored = event.input_messages
    if not isinstance(stored, list) or not stored:
        raise NotReplayableError(f"event {event.event_id}: no input messages were stored")
    for message in stored:
        if not isinstance(message, Mapping):
            raise NotReplayableError(f"event {event.event_id}: unreadable input message")
        role = str(message.get("role") or "user")
        parts = message.get("parts")
        if parts is None:  # already OpenAI-shaped
            messages.append(dict(message))
            continue
        tool_calls = [p for p in parts if isinstance(p, Mapping) and p.get("type") == "tool_call"]
        responses = [p for p in parts if isinstance(p, Mapping) and p.get("type") == "tool_call_response"]
        if responses:
            for response in responses:
                value = response.get("response")
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": response.get("id"),
                        "content": value if isinstance(value, str) else json.dumps(value),
                    }
                )
            continue
        content = _text_of_parts(parts, event.event_id)
        out: dict[str, Any] = {"role": role, "content": _collapse(content) if content else None if tool_calls else ""}
        if tool_calls:
            out["tool_calls"] = [
                {
                    "id": call.get("id"),
                    "type": "function",
                    "function": {"name": call.get("name"), "arguments": _arguments_text(call.get("arguments"))},
                }
                for call in tool_calls
            ]
        messages.append(out)
    return messages


def output_text(event: LLMEvent) -> str | None:
    """The text the stored event's model answered (None when the output was not stored)."""
    output = event.output_messages
    if not isinstance(output, list):
        return None
    texts: list[str] = []
    for message in output:
        for part in message.get("parts") or () if isinstance(message, Mapping) else ():
            if isinstance(part, Mapping) and part.get("type") == "text":
                texts.append(str(part.get("content") or ""))
    return "".join(texts)


def _tools_from_event(event: LLMEvent) -> list[dict[str, Any]] | None:
    definitions = event.tool_definitions
    if not isinstance(definitions, list) or not definitions:
        return None
    tools = []
    for definition in definitions:
        if not isinstance(definition, Mapping):
            continue
        function = {k: definition[k] for k in ("name", "description", "parameters") if k in definition}
        tools.append({"type": "function", "function": function})
    return tools or None


def litellm_model(event: LLMEvent) -> str:
    """The model string LiteLLM needs to reach the same provider and model again."""
    prefix = _LITELLM_PREFIX.get(event.provider or "")
    if prefix is None or event.model.startswith(prefix + "/"):
        return event.model
    return f"{prefix}/{event.model}"


def replay_request(event: LLMEvent, *, model: str | None = None, **overrides: Any) -> ReplayRequest:
    """The request a replay of ``event`` sends (``overrides`` replace stored parameters; None values remove them).

    Raises :class:`NotReplayableError` when the content needed is not stored in a replayable form.
    """
    mode = (event.redaction_mode or "").lower()
    if event.operation not in ("chat", "text_completion"):
        raise NotReplayableError(f"event {event.event_id}: only chat calls can be replayed (this is {event.operation})")
    if mode in ("metadata", "hashed") or not event.content_captured:
        shown = mode or "unknown"
        raise NotReplayableError(
            f"event {event.event_id} was stored in {shown!r} mode without its content: nothing to replay "
            "(store with capture_content=True and redaction_mode 'full' or 'redacted', or pass "
            "redaction_mode=RedactionMode.FULL on the calls you want to replay)"
        )
    messages = messages_from_event(event)
    parameters = {k: v for k, v in (event.parameters or {}).items() if k in _PARAMETERS}
    tools = _tools_from_event(event)
    if tools:
        parameters["tools"] = tools
    for key, value in overrides.items():
        if value is None:
            parameters.pop(key, None)
        else:
            parameters[key] = value
    return ReplayRequest(event.event_id, model or litellm_model(event), messages, parameters, lossy=mode == "redacted")
