"""What the templates show: number formats, the conversation of an event, its timeline, its replay command.

Everything here returns plain text; the templates escape it (autoescape), so stored content, labels and model names
are shown as text whatever they contain.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from leanllm_otel import formatting
from leanllm_otel.event import LLMEvent

__all__ = ["MessageView", "PartView", "conversation", "cost", "ms", "replay_command", "timeline", "tokens", "utc"]

_ROLE_ORDER = ("system", "user", "assistant", "tool")
_MODE_NOTES = {
    "full": "content stored verbatim",
    "redacted": "PII and secrets replaced by markers",
    "hashed": "content stored as HMAC digests",
    "metadata": "no content stored, sizes and counts only",
}


utc, ms, cost = formatting.utc, formatting.duration, formatting.usd


def tokens(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def mode_note(mode: str | None) -> str:
    return _MODE_NOTES.get(mode or "", "mode not recorded")


@dataclass
class PartView:
    """One part: ``kind`` is text, tool_call, tool_result, reasoning, media (a typed placeholder) or data."""

    kind: str
    text: str
    title: str = ""


@dataclass
class MessageView:
    role: str
    parts: list[PartView] = field(default_factory=list)
    note: str = ""


def _json(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=True)


def _size(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return ""
    return f"{value / 1024:.1f} KB" if value >= 1024 else f"{int(value)} B"


def _part(part: Any) -> PartView:
    if not isinstance(part, Mapping):
        return PartView("text", str(part))
    kind = str(part.get("type") or "unknown")
    if kind == "text":
        return PartView("text", str(part.get("content") or ""))
    if kind == "reasoning":
        return PartView("reasoning", str(part.get("content") or ""), "reasoning")
    if kind == "tool_call":
        title = f"tool call {part.get('name') or '?'}" + (f" · {part['id']}" if part.get("id") else "")
        return PartView("tool_call", _json(part.get("arguments")), title)
    if kind == "tool_call_response":
        title = "tool result" + (f" · {part['id']}" if part.get("id") else "")
        return PartView("tool_result", _json(part.get("response")), title)
    if kind in ("blob", "uri", "file", "image", "audio", "video"):
        facts = [str(part.get("modality") or kind), str(part.get("mime_type") or ""), _size(part.get("size"))]
        where = str(part.get("uri") or part.get("file_id") or "")
        return PartView("media", f"[{' · '.join(f for f in facts if f)}]" + (f" {where}" if where else ""), kind)
    rest = {k: v for k, v in part.items() if k != "type"}
    return PartView("media", f"[{kind}]" + (f" {_json(rest)}" if rest else ""), kind)


def _messages(value: Any) -> list[MessageView]:
    if value is None:
        return []
    if not isinstance(value, list):
        return [MessageView("data", [PartView("data", _json(value))])]
    views: list[MessageView] = []
    for message in value:
        if not isinstance(message, Mapping):
            views.append(MessageView("data", [PartView("data", _json(message))]))
            continue
        parts = message.get("parts")
        if not isinstance(parts, list):  # OpenAI-shaped, or something else
            content = message.get("content")
            parts = [content] if isinstance(content, str) else [] if content is None else content
            parts = [p if isinstance(p, Mapping) else {"type": "text", "content": p} for p in parts]
        note = str(message.get("finish_reason") or "")
        views.append(MessageView(str(message.get("role") or "?"), [_part(p) for p in parts], note))
    return views


def conversation(event: LLMEvent) -> dict[str, list[MessageView]]:
    """``system``, ``input`` and ``output`` messages of the event, ready to show (empty lists when not stored)."""
    system = event.system_instructions
    system_views: list[MessageView] = []
    if isinstance(system, list):
        system_views = [MessageView("system", [_part(p) for p in system])]
    elif system is not None:
        system_views = [MessageView("system", [PartView("text", _json(system))])]
    output = _messages(event.output_messages)
    if not output and event.tool_calls:
        output = [
            MessageView(
                "assistant", [_part({"type": "tool_call", **c}) for c in event.tool_calls if isinstance(c, Mapping)]
            )
        ]
    return {"system": system_views, "input": _messages(event.input_messages), "output": output}


def replay_command(event_id: str, masked_url: str) -> str:
    """The ``leanllm-otel replay`` command line for the event (the URL as shown, password masked)."""
    return f"leanllm-otel replay {shlex.quote(event_id)} --database-url {shlex.quote(masked_url)}"


@dataclass
class TimelineBar:
    event_id: str
    label: str
    left: float  # percent of the trace's span
    width: float
    status: str
    current: bool


def timeline(rows: Sequence[Any], current_id: str) -> list[TimelineBar]:
    """Bars for the events of one trace on a shared time axis (``rows``: ``EventRow``-like, oldest first)."""
    if not rows:
        return []
    starts = [row.timestamp for row in rows]
    ends = [row.end_timestamp or row.timestamp for row in rows]
    first, last = min(starts), max(ends)
    span = max((last - first).total_seconds(), 1e-3)
    bars = []
    for row, start, end in zip(rows, starts, ends, strict=True):
        left = (start - first).total_seconds() / span * 100
        width = max((end - start).total_seconds() / span * 100, 0.8)
        bars.append(
            TimelineBar(
                row.event_id,
                row.model,
                round(left, 2),
                round(min(width, 100 - left), 2),
                row.status,
                row.event_id == current_id,
            )
        )
    return bars
