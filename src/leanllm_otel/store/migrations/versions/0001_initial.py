"""Initial event store: one row per LLM call, keyed by event id.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "leanllm_events",
        sa.Column("event_id", sa.String(), primary_key=True),
        sa.Column("trace_id", sa.String(32)),
        sa.Column("span_id", sa.String(16)),
        sa.Column("parent_span_id", sa.String(16)),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_timestamp", sa.DateTime(timezone=True)),
        sa.Column("operation", sa.String(), nullable=False),
        sa.Column("provider", sa.String()),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("response_model", sa.String()),
        sa.Column("response_id", sa.String()),
        sa.Column("finish_reasons", _json()),
        sa.Column("server_address", sa.String()),
        sa.Column("server_port", sa.Integer()),
        sa.Column("input_tokens", sa.BigInteger()),
        sa.Column("output_tokens", sa.BigInteger()),
        sa.Column("total_tokens", sa.BigInteger()),
        sa.Column("cache_read_input_tokens", sa.BigInteger()),
        sa.Column("cache_creation_input_tokens", sa.BigInteger()),
        sa.Column("reasoning_tokens", sa.BigInteger()),
        sa.Column("usage_reported", sa.Boolean()),
        sa.Column("cost", sa.Float()),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("stream_outcome", sa.String()),
        sa.Column("stream_chunks", sa.Integer()),
        sa.Column("time_to_first_token_ms", sa.Float()),
        sa.Column("total_stream_time_ms", sa.Float()),
        sa.Column("labels", _json()),
        sa.Column("metadata", _json()),
        sa.Column("environment", sa.String()),
        sa.Column("correlation_id", sa.String()),
        sa.Column("parent_request_id", sa.String()),
        sa.Column("parameters", _json()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_type", sa.String()),
        sa.Column("error_kind", sa.String()),
        sa.Column("error_message", sa.Text()),
        sa.Column("redaction_mode", sa.String()),
        sa.Column("sampling_rate", sa.Float()),
        sa.Column("content_captured", sa.Boolean(), nullable=False),
        sa.Column("input_messages", _json()),
        sa.Column("output_messages", _json()),
        sa.Column("system_instructions", _json()),
        sa.Column("tool_definitions", _json()),
        sa.Column("tool_calls", _json()),
        sa.Column("input_message_count", sa.Integer()),
        sa.Column("input_chars", sa.Integer()),
        sa.Column("output_chars", sa.Integer()),
    )
    op.create_index("ix_leanllm_events_timestamp", "leanllm_events", ["timestamp"])
    op.create_index("ix_leanllm_events_correlation_id", "leanllm_events", ["correlation_id"])
    op.create_index("ix_leanllm_events_model_timestamp", "leanllm_events", ["model", "timestamp"])


def downgrade() -> None:
    op.drop_table("leanllm_events")
