"""How the store commands print events: the ``logs`` table, the ``show`` page and the ``stats`` rows."""

from __future__ import annotations

import json
from collections.abc import Sequence

from leanllm_otel import formatting
from leanllm_otel.cli import print_json_line, print_table
from leanllm_otel.event import LLMEvent
from leanllm_otel.store.queries import GroupStats

__all__ = ["LOG_HEADERS", "STATS_HEADERS", "log_row", "print_events", "show_text", "stats_row"]

_time, _ms, _cost = formatting.utc, formatting.duration, formatting.usd


def _tokens(event: LLMEvent) -> str:
    if event.input_tokens is None and event.output_tokens is None:
        return "-"
    return f"{event.input_tokens or 0}/{event.output_tokens or 0}"


LOG_HEADERS = ("TIME (UTC)", "EVENT ID", "MODEL", "STATUS", "TOKENS IN/OUT", "COST", "LATENCY", "LABELS")


def log_row(event: LLMEvent) -> list[str]:
    status = event.status if event.status == "ok" else f"error:{event.error_kind or event.error_type or '?'}"
    labels = ",".join(f"{k}={v}" for k, v in sorted(event.labels.items()))
    return [
        _time(event.timestamp),
        event.event_id,
        event.model or "-",
        status,
        _tokens(event),
        _cost(event.cost),
        _ms(event.latency_ms),
        labels,
    ]


def print_events(events: Sequence[LLMEvent], as_json: bool) -> None:
    if as_json:
        for event in events:
            print_json_line(event.to_payload())
        return
    print_table(LOG_HEADERS, [log_row(e) for e in events], right_align=(4, 5, 6))


_SHOW_SCALARS = (
    "event_id",
    "timestamp",
    "end_timestamp",
    "trace_id",
    "span_id",
    "parent_span_id",
    "operation",
    "provider",
    "model",
    "response_model",
    "response_id",
    "finish_reasons",
    "server_address",
    "server_port",
    "status",
    "error_type",
    "error_kind",
    "error_message",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
    "usage_reported",
    "cost",
    "latency_ms",
    "stream",
    "stream_outcome",
    "stream_chunks",
    "time_to_first_token_ms",
    "total_stream_time_ms",
    "environment",
    "correlation_id",
    "parent_request_id",
    "redaction_mode",
    "sampling_rate",
    "content_captured",
    "input_message_count",
    "input_chars",
    "output_chars",
    "max_severity",
    "blocked",
    "block_reason",
)
_SHOW_SECTIONS = (
    "labels",
    "metadata",
    "parameters",
    "findings",
    "system_instructions",
    "input_messages",
    "output_messages",
    "tool_definitions",
    "tool_calls",
    "normalized_input",
    "normalized_output",
)


def show_text(event: LLMEvent) -> str:
    payload = event.to_payload()
    pairs = [(name, payload.get(name)) for name in _SHOW_SCALARS if payload.get(name) not in (None, [], "")]
    width = max(len(name) for name, _ in pairs)
    lines = []
    for name, value in pairs:
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        lines.append(f"{name.ljust(width)}  {shown}")
    for name in _SHOW_SECTIONS:
        value = payload.get(name)
        if value in (None, {}, []):
            continue
        lines.append("")
        lines.append(f"{name}:")
        text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)
        lines.extend("  " + line for line in text.splitlines())
    return "\n".join(lines) + "\n"


STATS_HEADERS = ("GROUP", "CALLS", "ERRORS", "ERR%", "TOKENS", "COST", "P50", "P95", "TTFT P50")


def stats_row(group: GroupStats) -> list[str]:
    return [
        group.key,
        str(group.calls),
        str(group.errors),
        f"{group.error_rate * 100:.1f}",
        str(group.total_tokens),
        f"${group.cost:.6f}",
        _ms(group.latency_p50_ms),
        _ms(group.latency_p95_ms),
        _ms(group.ttft_p50_ms),
    ]
