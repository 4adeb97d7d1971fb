"""Seeding stores for the viewer, score and search tests: events written by the real SQL exporter (so the
content-search triggers fire), some with content, one carrying hostile markup in content, labels and model name."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from leanllm_otel import semconv as sc
from leanllm_otel.exporters.sql import SQLSpanExporter
from loopback.events import fast_config, make_llm_span

XSS = '<script>window.__pwned = 1; alert("x")</script><img src=x onerror="window.__pwned = 2">'
SEARCH_WORD = "quokka"


def conversation(text: str, answer: str = "fine") -> dict[str, Any]:
    return {
        sc.LEANLLM_CONTENT_CAPTURED: True,
        sc.LEANLLM_REDACTION_MODE: "full",
        sc.GEN_AI_SYSTEM_INSTRUCTIONS: json.dumps([{"type": "text", "content": "be brief"}]),
        sc.GEN_AI_INPUT_MESSAGES: json.dumps(
            [
                {"role": "user", "parts": [{"type": "text", "content": text},
                                           {"type": "blob", "modality": "image", "mime_type": "image/png",
                                            "size": 2048}]},
            ]
        ),
        sc.GEN_AI_OUTPUT_MESSAGES: json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": answer},
                                             {"type": "tool_call", "id": "call_1", "name": "lookup",
                                              "arguments": {"city": "Perth"}}],
              "finish_reason": "stop"}]
        ),
    }


def write_spans(database_url: str, spans: list[Any]) -> None:
    exporter = SQLSpanExporter(config=fast_config(database_url))
    try:
        for start in range(0, len(spans), 500):
            exporter.export(spans[start : start + 500])
    finally:
        exporter.shutdown()


def seed(database_url: str, count: int = 60, *, now: datetime | None = None) -> dict[str, str]:
    """``count`` ordinary events one second apart (newest first at ``now``), plus named special ones.

    Returns the special ids: ``searchable`` (content with SEARCH_WORD), ``hostile`` (XSS in content, label and
    model), ``error`` (a rate-limit error), ``parent`` / ``child`` (parent_request_id lineage, same trace id).
    """
    now = now or datetime.now(timezone.utc)
    spans = []
    for i in range(count):
        spans.append(make_llm_span(
            event_id=f"ev-{i:05d}", model="gpt-4o-mini" if i % 3 else "claude-3-haiku",
            labels={"feature": "search" if i % 2 else "chat"}, start=now - timedelta(seconds=i + 10),
            latency_ms=100.0 + i, cost=0.001 * (i % 5),
            extra={sc.LEANLLM_USER_ID: f"user-{i % 4}", sc.LEANLLM_SESSION_ID: f"session-{i % 7}"},
        ))  # fmt: skip
    ids = {"searchable": "ev-search", "hostile": "ev-hostile", "error": "ev-error", "parent": "ev-parent",
           "child": "ev-child"}  # fmt: skip
    spans.append(make_llm_span(event_id=ids["searchable"], start=now - timedelta(seconds=5),
                               extra=conversation(f"tell me about the {SEARCH_WORD} please")))
    spans.append(make_llm_span(event_id=ids["hostile"], model=f"evil-{XSS}", labels={"note": XSS},
                               start=now - timedelta(seconds=4), extra=conversation(XSS, answer=XSS)))
    spans.append(make_llm_span(event_id=ids["error"], error="RateLimitError", start=now - timedelta(seconds=3)))
    spans.append(make_llm_span(event_id=ids["parent"], start=now - timedelta(seconds=2), correlation_id="corr-1"))
    spans.append(make_llm_span(event_id=ids["child"], start=now - timedelta(seconds=1), correlation_id="corr-1",
                               extra={sc.LEANLLM_PARENT_REQUEST_ID: ids["parent"]}))
    write_spans(database_url, spans)
    return ids
