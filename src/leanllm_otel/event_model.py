"""``LLMEvent``: one logical LLM call, as stored, sent to the LeanLLM service and handed to hooks.

Every other representation (the SQL row, the service payload, the CLI's JSON lines, ``last_event``) is derived
from it; the mapping from span attributes is :mod:`leanllm_otel.event` (which also exports this model).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from leanllm_otel import semconv as sc

__all__ = ["EVENT_ID_MAX_CHARS", "EventStatus", "LLMEvent"]

EventStatus = Literal["ok", "error"]

# The event id is the store's key: one rule everywhere (the SDK's exporters and the ingest service alike).
EVENT_ID_MAX_CHARS = 256


class LLMEvent(BaseModel):
    """One logical LLM call, as stored and as handed to hooks."""

    model_config = ConfigDict(extra="ignore", frozen=False)

    event_id: str = Field(min_length=1, max_length=EVENT_ID_MAX_CHARS)
    trace_id: str | None = None
    span_id: str | None = None
    parent_span_id: str | None = None
    timestamp: datetime
    end_timestamp: datetime | None = None

    operation: str = sc.OP_CHAT
    provider: str | None = None
    model: str = ""
    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: list[str] = Field(default_factory=list)
    server_address: str | None = None
    server_port: int | None = None

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    usage_reported: bool | None = None
    cost: float | None = None
    latency_ms: float | None = None

    stream: bool = False
    stream_outcome: str | None = None
    stream_chunks: int | None = None
    time_to_first_token_ms: float | None = None
    total_stream_time_ms: float | None = None

    labels: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    environment: str | None = None
    correlation_id: str | None = None
    parent_request_id: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)

    status: EventStatus = "ok"
    error_type: str | None = None
    error_kind: str | None = None
    error_message: str | None = None

    redaction_mode: str | None = None
    sampling_rate: float | None = None
    content_captured: bool = False
    input_messages: Any = None
    output_messages: Any = None
    system_instructions: Any = None
    tool_definitions: Any = None
    tool_calls: Any = None
    input_message_count: int | None = None
    output_message_count: int | None = None
    content_truncated: bool = False
    input_chars: int | None = None
    output_chars: int | None = None

    findings: dict[str, int] = Field(default_factory=dict)
    max_severity: str | None = None
    blocked: bool = False
    block_reason: str | None = None
    normalized_input: Any = None
    normalized_output: Any = None

    @property
    def request_id(self) -> str:
        """LeanLLM's name for the event id."""
        return self.event_id

    @property
    def is_error(self) -> bool:
        return self.status == "error"

    def to_row(self) -> dict[str, Any]:
        """The SQL row (JSON columns hold plain Python structures)."""
        return self.model_dump()

    def to_payload(self) -> dict[str, Any]:
        """The JSON object sent to the LeanLLM service and printed by the CLI."""
        return self.model_dump(mode="json")
