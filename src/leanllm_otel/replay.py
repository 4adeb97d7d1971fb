"""Replay: run a stored event's request again through LiteLLM, optionally changed, and compare the outcomes.

::

    from leanllm_otel.replay import replay_event, replay_batch
    result = replay_event(store.get_event(event_id), model="openai/gpt-4o", temperature=0)
    print(result.identical, result.token_delta, result.cost_delta)
    print(result.diff)

Only events stored with their content can be replayed: ``full`` mode (verbatim) or ``redacted`` mode (PII and
secrets stay replaced by their markers, so ``result.lossy`` is True). Events in ``metadata`` or ``hashed`` mode,
events whose content was truncated or held inline binary data (stored as size only) raise
:class:`NotReplayableError` saying why.

With a ``LeanLLM`` client (``client=``) the replay is itself an event, labelled ``replay_of=<original id>``;
without one it is a plain ``litellm.completion`` (traced like any other call when LiteLLM is instrumented).
"""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from leanllm_otel.cost import call_cost
from leanllm_otel.event import LLMEvent
from leanllm_otel.instrumentation.credentials import credential_values
from leanllm_otel.sensitive import scrub

if TYPE_CHECKING:
    from leanllm_otel.client import LeanLLM

__all__ = [
    "NotReplayableError",
    "ReplayRequest",
    "ReplayResult",
    "ReplaySummary",
    "replay_batch",
    "replay_event",
    "replay_request",
]

REPLAY_LABEL = "replay_of"

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


@dataclass
class ReplayResult:
    """One replay, compared with the original event."""

    event_id: str
    model: str
    original_model: str
    original_text: str | None
    text: str | None = None
    identical: bool | None = None
    similarity: float | None = None
    diff: str = ""
    input_token_delta: int | None = None
    output_token_delta: int | None = None
    cost_delta: float | None = None
    latency_delta_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    latency_ms: float | None = None
    lossy: bool = False
    error: str | None = None
    skipped: str | None = None
    replay_event_id: str | None = None

    @property
    def token_delta(self) -> int | None:
        """Total token change (input + output), None when either side did not report usage."""
        if self.input_token_delta is None or self.output_token_delta is None:
            return None
        return self.input_token_delta + self.output_token_delta

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "token_delta": self.token_delta}


@dataclass
class ReplaySummary:
    """Totals of a batch replay."""

    results: list[ReplayResult]

    @property
    def replayed(self) -> int:
        return sum(1 for r in self.results if r.skipped is None and r.error is None)

    @property
    def identical(self) -> int:
        return sum(1 for r in self.results if r.identical)

    @property
    def changed(self) -> int:
        return sum(1 for r in self.results if r.identical is False)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if r.error is not None)

    @property
    def skipped(self) -> int:
        return sum(1 for r in self.results if r.skipped is not None)

    @property
    def cost_delta(self) -> float:
        return round(sum(r.cost_delta or 0.0 for r in self.results), 10)

    @property
    def token_delta(self) -> int:
        return sum(r.token_delta or 0 for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "replayed": self.replayed,
            "identical": self.identical,
            "changed": self.changed,
            "failed": self.failed,
            "skipped": self.skipped,
            "cost_delta": self.cost_delta,
            "token_delta": self.token_delta,
        }


# --- stored content -> LiteLLM request ---------------------------------------------------------------------------


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


# --- running and comparing ---------------------------------------------------------------------------------------


def _response_text(response: Any) -> str:
    choices = getattr(response, "choices", None) or []
    texts = []
    for choice in choices[:1]:
        message = getattr(choice, "message", None)
        content = getattr(message, "content", None)
        if isinstance(content, str):
            texts.append(content)
    return "".join(texts)


def _usage(response: Any) -> tuple[int | None, int | None]:
    usage = getattr(response, "usage", None)
    prompt = getattr(usage, "prompt_tokens", None)
    completion = getattr(usage, "completion_tokens", None)
    return (prompt if isinstance(prompt, int) else None, completion if isinstance(completion, int) else None)


def _delta(new: float | None, old: float | None) -> Any:
    if new is None or old is None:
        return None
    return new - old


def compare(event: LLMEvent, result: ReplayResult) -> ReplayResult:
    """Fill ``identical``, ``similarity``, ``diff`` and the deltas of ``result`` against ``event``."""
    original, new = result.original_text, result.text
    if original is not None and new is not None:
        result.identical = original == new
        result.similarity = round(difflib.SequenceMatcher(None, original, new).ratio(), 4)
        if not result.identical:
            result.diff = "".join(
                difflib.unified_diff(
                    original.splitlines(keepends=True) or [""],
                    new.splitlines(keepends=True) or [""],
                    fromfile=f"original {event.event_id}",
                    tofile=f"replay {result.model}",
                )
            )
    result.input_token_delta = _delta(result.input_tokens, event.input_tokens)
    result.output_token_delta = _delta(result.output_tokens, event.output_tokens)
    cost_delta = _delta(result.cost, event.cost)
    result.cost_delta = round(cost_delta, 10) if cost_delta is not None else None
    result.latency_delta_ms = _delta(result.latency_ms, event.latency_ms)
    return result


def replay_event(
    event: LLMEvent,
    *,
    model: str | None = None,
    client: LeanLLM | None = None,
    litellm_kwargs: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> ReplayResult:
    """Re-run ``event`` (``model`` and parameter ``overrides`` such as ``temperature=0``, ``max_tokens=64``) and
    compare. ``litellm_kwargs`` (``api_base``, ``api_key``, ...) go to LiteLLM and are never recorded.
    Raises :class:`NotReplayableError`; a failing provider call is reported in ``result.error``."""
    request = replay_request(event, model=model, **overrides)
    result = ReplayResult(
        event_id=event.event_id,
        model=request.model,
        original_model=event.model,
        original_text=output_text(event),
        lossy=request.lossy,
    )
    kwargs = {**request.parameters, **dict(litellm_kwargs or {})}
    started = time.perf_counter()
    try:
        if client is not None:
            response = client.chat(request.model, request.messages, {REPLAY_LABEL: event.event_id}, **kwargs)
            last = client.last_event
            result.replay_event_id = last.event_id if last is not None else None
        else:
            import litellm

            response = litellm.completion(model=request.model, messages=request.messages, **kwargs)
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        # Printed and stored by the caller: without the credentials the call carried (a gateway may echo them).
        result.error = f"{type(exc).__name__}: {scrub(first_line, credential_values(kwargs))}"
        return result
    result.latency_ms = (time.perf_counter() - started) * 1000.0
    result.text = _response_text(response)
    result.input_tokens, result.output_tokens = _usage(response)
    result.cost = call_cost(response)
    return compare(event, result)


def replay_batch(
    events: Iterable[LLMEvent],
    *,
    model: str | None = None,
    client: LeanLLM | None = None,
    litellm_kwargs: Mapping[str, Any] | None = None,
    on_result: Callable[[ReplayResult], None] | None = None,
    **overrides: Any,
) -> ReplaySummary:
    """Replay every event (sequentially); events that cannot be replayed are listed as skipped with the reason."""
    results: list[ReplayResult] = []
    for event in events:
        try:
            result = replay_event(event, model=model, client=client, litellm_kwargs=litellm_kwargs, **overrides)
        except NotReplayableError as exc:
            result = ReplayResult(event.event_id, model or event.model, event.model, None, skipped=str(exc))
        results.append(result)
        if on_result is not None:
            on_result(result)
    return ReplaySummary(results)
