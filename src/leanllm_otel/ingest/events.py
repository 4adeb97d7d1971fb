"""The LeanLLM service protocol body (``{"events": [LLMEvent, ...]}``) as validated events and per-event reasons.

Runs off the event loop (a large body takes a while to decode). Every reason names the field and never quotes
the value: reasons go back to the sender and into the service's log, and a value may be a prompt.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from leanllm_otel.event import LLMEvent

__all__ = ["EventBatch", "PayloadError", "load_json", "parse_events", "validation_reason"]

MAX_REASON_CHARS = 300


class PayloadError(ValueError):
    """The body as a whole is unusable (not JSON, not ``{"events": [...]}``); the message quotes no value."""


@dataclass
class EventBatch:
    """The events of one request: the first occurrence of each id, and why the others were dropped."""

    total: int = 0
    events: list[LLMEvent] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # the request index of each event
    errors: list[tuple[int, str]] = field(default_factory=list)  # (request index, reason)
    duplicates: int = 0  # a replayed id inside the request: accepted, written once (the first)

    def reject(self, index: int, reason: str) -> None:
        self.errors.append((index, reason))


def load_json(body: bytes, error: type[ValueError] = ValueError) -> Any:
    """``body`` decoded as JSON; raises ``error`` with a reason that gives a position, never a piece of the body."""
    try:
        return json.loads(body)
    except RecursionError:
        raise error("invalid JSON: nested too deeply") from None
    except UnicodeDecodeError:
        raise error("invalid JSON: not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise error(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def parse_events(body: bytes) -> EventBatch:
    """Decode and validate ``body``. Raises :class:`PayloadError` when it is not a JSON ``{"events": [...]}``."""
    document = load_json(body, PayloadError)
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise PayloadError('body must be a JSON object {"events": [...]}')
    items: list[Any] = document["events"]
    batch = EventBatch(total=len(items))
    seen: set[str] = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            batch.reject(index, "not a JSON object")
            continue
        try:
            event = LLMEvent.model_validate(item)
        except ValidationError as exc:
            batch.reject(index, validation_reason(exc))
            continue
        except RecursionError:
            batch.reject(index, "nested too deeply")
            continue
        if event.event_id in seen:  # one rule: the first write of an id wins, within a request and across
            batch.duplicates += 1
            continue
        seen.add(event.event_id)
        batch.events.append(event)
        batch.positions.append(index)
    return batch


def validation_reason(exc: ValidationError) -> str:
    """``field: message`` for each error; below the field, only positions (``labels.*``), never keys or values."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False, include_context=False):
        parts.append(f"{_location(error['loc'])}: {error['msg']}")
    return "; ".join(parts)[:MAX_REASON_CHARS]


def _location(loc: Sequence[Any]) -> str:
    if not loc:
        return "event"
    names = [str(loc[0])]
    names.extend(f"[{item}]" if isinstance(item, int) else "*" for item in loc[1:])
    return ".".join(names).replace(".[", "[")
