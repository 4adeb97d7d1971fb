"""Helpers for the SQL store tests: real SDK spans shaped like leanllm LLM spans, seeded events, a db fixture."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import Status, StatusCode

from leanllm_otel import semconv as sc
from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.event import LLMEvent
from leanllm_otel.exporters.sql import SQLSpanExporter

_provider = TracerProvider()
_tracer = _provider.get_tracer("leanllm-sql-tests")


def make_llm_span(
    *,
    event_id: str | None = None,
    model: str = "gpt-4o-mini",
    labels: dict[str, str] | None = None,
    correlation_id: str | None = None,
    error: str | None = None,
    input_tokens: int = 12,
    output_tokens: int = 7,
    cost: float = 0.00042,
    latency_ms: float = 123.0,
    ttft_ms: float | None = None,
    content: bool = False,
    start: datetime | None = None,
    extra: dict[str, Any] | None = None,
) -> ReadableSpan:
    """A finished SDK span carrying the attributes the instrumentor sets on an LLM span."""
    start_ns = int((start or datetime.now(timezone.utc)).timestamp() * 1e9)
    span = _tracer.start_span(f"chat {model}", start_time=start_ns)
    attributes: dict[str, Any] = {
        sc.LEANLLM_REQUEST_ID: event_id or str(uuid.uuid4()),
        sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_REQUEST_MODEL: model,
        sc.GEN_AI_RESPONSE_MODEL: f"{model}-2024",
        sc.GEN_AI_RESPONSE_ID: "chatcmpl-1",
        sc.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
        sc.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
        sc.LEANLLM_TOTAL_TOKENS: input_tokens + output_tokens,
        sc.LEANLLM_COST_USD: cost,
        sc.LEANLLM_LATENCY_MS: latency_ms,
        sc.GEN_AI_REQUEST_TEMPERATURE: 0.2,
        sc.GEN_AI_REQUEST_MAX_TOKENS: 64,
        sc.LEANLLM_ENVIRONMENT: "test",
    }
    for key, value in (labels or {}).items():
        attributes[sc.LEANLLM_LABEL_PREFIX + key] = value
    if correlation_id is not None:
        attributes[sc.LEANLLM_CORRELATION_ID] = correlation_id
    if ttft_ms is not None:
        attributes[sc.LEANLLM_STREAM] = True
        attributes[sc.LEANLLM_TTFT_MS] = ttft_ms
    if content:
        attributes[sc.LEANLLM_CONTENT_CAPTURED] = True
        attributes[sc.GEN_AI_INPUT_MESSAGES] = json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": "héllo [PII:EMAIL]"}]}]
        )
        attributes[sc.GEN_AI_OUTPUT_MESSAGES] = json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": "hi"}], "finish_reason": "stop"}]
        )
        attributes[sc.LEANLLM_TOOL_CALLS] = json.dumps([{"id": "call_1", "name": "lookup", "arguments": {"q": 1}}])
        attributes[sc.LEANLLM_SECURITY_FINDINGS] = json.dumps({"EMAIL": 1})
        attributes[sc.LEANLLM_SECURITY_MAX_SEVERITY] = "medium"
    if error is not None:
        attributes[sc.ERROR_TYPE] = error
        attributes[sc.LEANLLM_ERROR_KIND] = "rate_limit"
        attributes[sc.LEANLLM_ERROR_MESSAGE] = "slow down"
    attributes.update(extra or {})
    span.set_attributes(attributes)
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, "slow down"))
    span.end(end_time=start_ns + int(latency_ms * 1e6))
    return span  # type: ignore[return-value]


def make_plain_span(name: str = "GET /") -> ReadableSpan:
    span = _tracer.start_span(name)
    span.set_attribute("http.method", "GET")
    span.end()
    return span  # type: ignore[return-value]


def make_event(
    *,
    minutes_ago: float = 0.0,
    model: str = "gpt-4o-mini",
    labels: dict[str, str] | None = None,
    correlation_id: str | None = None,
    error: bool = False,
    latency_ms: float = 100.0,
    ttft_ms: float | None = None,
    input_tokens: int = 10,
    output_tokens: int = 5,
    cost: float = 0.001,
    now: datetime | None = None,
) -> LLMEvent:
    start = (now or datetime.now(timezone.utc)) - timedelta(minutes=minutes_ago)
    return LLMEvent(
        event_id=str(uuid.uuid4()),
        timestamp=start,
        model=model,
        labels=labels or {},
        correlation_id=correlation_id,
        status="error" if error else "ok",
        error_kind="rate_limit" if error else None,
        latency_ms=latency_ms,
        time_to_first_token_ms=ttft_ms,
        stream=ttft_ms is not None,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
        cost=cost,
    )


def fast_config(database_url: str, **overrides: Any) -> LeanLLMConfig:
    """A config with short retries so fault tests finish quickly."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "retry_max_attempts": 3,
        "retry_initial_backoff_ms": 20,
        "retry_total_budget_ms": 1000,
        "export_timeout_ms": 5000,
        "circuit_breaker_failure_threshold": 100,
    }
    values.update(overrides)
    return LeanLLMConfig(**values)


def write_events(database_url: str, events: list[LLMEvent], recorded_at: datetime) -> None:
    """Store ``events`` through the real SQL exporter, all recorded at ``recorded_at``."""
    exporter = SQLSpanExporter(config=fast_config(database_url))
    try:
        exporter.write_rows([SQLSpanExporter.event_to_row(e, recorded_at) for e in events])
    finally:
        exporter.shutdown()
