"""What the guard reads from an ended span's attributes and what it writes for it: the labels budgets and
baselines match on, token counts, guardrail event rows and budget alerts. Pure functions, no state."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from leanllm_otel import semconv as sc
from leanllm_otel.guardrails.alerts import BUDGET, Alert
from leanllm_otel.guardrails.budgets import BudgetEvent
from leanllm_otel.processing.detectors import Severity

__all__ = ["budget_alert", "call_labels", "event_row", "number", "tokens_of"]

_CONTEXT_LABELS = (
    ("user_id", sc.LEANLLM_USER_ID),
    ("feature", sc.LEANLLM_FEATURE),
    ("session_id", sc.LEANLLM_SESSION_ID),
    ("environment", sc.LEANLLM_ENVIRONMENT),
    ("model", sc.GEN_AI_REQUEST_MODEL),
)


def call_labels(attributes: Mapping[str, Any] | None) -> dict[str, str]:
    """What budgets and baselines match on: the call's labels, plus user_id/feature/session_id/environment/model."""
    attributes = attributes or {}
    prefix = sc.LEANLLM_LABEL_PREFIX
    labels = {key[len(prefix) :]: str(value) for key, value in attributes.items() if key.startswith(prefix)}
    for name, attribute in _CONTEXT_LABELS:
        value = attributes.get(attribute)
        if value is not None and name not in labels:
            labels[name] = str(value)
    return labels


def number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def tokens_of(attrs: Mapping[str, Any]) -> float | None:
    total = number(attrs.get(sc.LEANLLM_TOTAL_TOKENS))
    if total is not None:
        return total
    parts = [number(attrs.get(sc.GEN_AI_USAGE_INPUT_TOKENS)), number(attrs.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS))]
    known = [p for p in parts if p is not None]
    return sum(known) if known else None


def budget_alert(event: BudgetEvent, model: str) -> Alert:
    severity = Severity.HIGH if event.kind == "exceeded" or event.spent_usd >= event.limit_usd else Severity.MEDIUM
    verb = {"warn": "reached its warning level", "exceeded": "is exhausted", "blocked": "refused a call"}[event.kind]
    return Alert(
        BUDGET,
        severity,
        f"budget_{event.kind}:{event.key}",
        f"Budget {event.key} {verb}: ${event.spent_usd:.4f} of ${event.limit_usd:.4f} in {event.window_s:g} s",
        {
            "budget": event.budget,
            "key": event.key,
            "spent_usd": round(event.spent_usd, 6),
            "limit_usd": event.limit_usd,
            "action": event.action,
            "model": model,
        },
    )


def event_row(
    now: datetime,
    kind: str,
    name: str,
    key: str | None,
    model: str,
    event_id: Any,
    value: float | None,
    threshold: float | None,
    details: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "timestamp": now,
        "kind": kind,
        "name": name,
        "key": key,
        "model": model or None,
        "event_id": str(event_id) if event_id is not None else None,
        "value": value,
        "threshold": threshold,
        "details": dict(details),
    }
