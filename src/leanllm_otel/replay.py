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
without one it is a plain ``litellm.completion`` (traced like any other call when LiteLLM is instrumented). The
request built from the stored event is :mod:`leanllm_otel.replay_source`'s.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from leanllm_otel.cost import call_cost
from leanllm_otel.event import LLMEvent
from leanllm_otel.instrumentation.credentials import credential_values
from leanllm_otel.instrumentation.litellm_compat import hidden_params
from leanllm_otel.replay_source import (
    NotReplayableError,
    ReplayRequest,
    output_text,
    replay_request,
)
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
    result.cost = call_cost(response, hidden_params(response))
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
