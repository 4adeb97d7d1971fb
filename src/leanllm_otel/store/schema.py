"""SQLAlchemy Core definition of the event store at the newest migration (``head``).

One row per ``LLMEvent`` (``event_id`` is the key); JSON columns hold labels, parameters, content, tool calls and
findings. Feedback scores live in ``leanllm_scores`` (many per event). Stored content is searchable: on PostgreSQL
through a GIN index over :func:`content_tsvector`, on SQLite through the FTS5 table ``leanllm_events_fts`` that
triggers fill (revision 0007; ``leanllm_otel.event_filter`` falls back to a scan on stores without them).

The migrations in ``store/migrations/versions`` build this schema step by step and do not import this
module (a migration is a frozen snapshot); ``tests/test_migrations.py`` checks the two agree.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    literal_column,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement

EVENTS_TABLE = "leanllm_events"
SCORES_TABLE = "leanllm_scores"
CONTENT_SEARCH_TABLE = "leanllm_events_fts"  # SQLite FTS5 (event_id UNINDEXED, body)
CONTENT_SEARCH_INDEX = "ix_leanllm_events_content_search"  # PostgreSQL GIN
# The columns whose stored content is searchable (their JSON string values, whatever the redaction mode left).
CONTENT_COLUMNS = ("system_instructions", "input_messages", "output_messages", "tool_calls")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive text; values come back as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def json_type() -> Any:
    """JSON on SQLite, JSONB on PostgreSQL; Python ``None`` is stored as SQL NULL."""
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def content_tsvector() -> ColumnElement[Any]:
    """The PostgreSQL ``tsvector`` of an event's content (every JSON string value, ``simple`` configuration).

    Rendered with literal constants, never bound parameters: the planner uses the GIN index only for a query
    expression identical to the indexed one (revision 0007 spells the same expression).
    """
    vectors = [
        f"coalesce(jsonb_to_tsvector('simple'::regconfig, {name}, '[\"string\"]'::jsonb), ''::tsvector)"
        for name in CONTENT_COLUMNS
    ]
    return literal_column("(" + " || ".join(vectors) + ")")


metadata = MetaData()

events = Table(
    EVENTS_TABLE,
    metadata,
    Column("event_id", String, primary_key=True),
    Column("trace_id", String(32)),
    Column("span_id", String(16)),
    Column("parent_span_id", String(16)),
    Column("timestamp", UTCDateTime, nullable=False),
    Column("end_timestamp", UTCDateTime),
    Column("operation", String, nullable=False),
    Column("provider", String),
    Column("model", String, nullable=False),
    Column("response_model", String),
    Column("response_id", String),
    Column("finish_reasons", json_type()),
    Column("server_address", String),
    Column("server_port", Integer),
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("total_tokens", BigInteger),
    Column("cache_read_input_tokens", BigInteger),
    Column("cache_creation_input_tokens", BigInteger),
    Column("reasoning_tokens", BigInteger),
    Column("usage_reported", Boolean),
    Column("cost", Float),
    Column("latency_ms", Float),
    Column("stream", Boolean, nullable=False),
    Column("stream_outcome", String),
    Column("stream_chunks", Integer),
    Column("time_to_first_token_ms", Float),
    Column("total_stream_time_ms", Float),
    Column("labels", json_type()),
    Column("metadata", json_type()),
    Column("environment", String),
    Column("correlation_id", String),
    Column("parent_request_id", String),
    Column("parameters", json_type()),
    Column("status", String(16), nullable=False),
    Column("error_type", String),
    Column("error_kind", String),
    Column("error_message", Text),
    Column("redaction_mode", String),
    Column("sampling_rate", Float),
    Column("content_captured", Boolean, nullable=False),
    Column("input_messages", json_type()),
    Column("output_messages", json_type()),
    Column("system_instructions", json_type()),
    Column("tool_definitions", json_type()),
    Column("tool_calls", json_type()),
    Column("input_message_count", Integer),
    Column("input_chars", Integer),
    Column("output_chars", Integer),
    # revision 0002
    Column("findings", json_type()),
    Column("max_severity", String),
    Column("blocked", Boolean),
    Column("block_reason", String),
    Column("normalized_input", json_type()),
    Column("normalized_output", json_type()),
    Column("recorded_at", UTCDateTime),
    # revision 0004
    Column("output_message_count", Integer),
    Column("content_truncated", Boolean),
    Index("ix_leanllm_events_timestamp", "timestamp"),
    Index("ix_leanllm_events_correlation_id", "correlation_id"),
    Index("ix_leanllm_events_model_timestamp", "model", "timestamp"),
    Index("ix_leanllm_events_status_timestamp", "status", "timestamp"),
    Index("ix_leanllm_events_recorded_at", "recorded_at"),
    # revision 0007 (PostgreSQL only; SQLite uses the FTS5 table CONTENT_SEARCH_TABLE)
    Index(CONTENT_SEARCH_INDEX, content_tsvector(), postgresql_using="gin").ddl_if(dialect="postgresql"),
)

# revision 0006: feedback scores (numeric, boolean or category), any number per event and name.
scores = Table(
    SCORES_TABLE,
    metadata,
    Column("score_id", String(32), primary_key=True),
    Column("event_id", String, nullable=False),
    Column("name", String, nullable=False),
    Column("kind", String(16), nullable=False),  # numeric | boolean | category
    Column("value", Float),  # the number; booleans 1.0 / 0.0; NULL for a category
    Column("label", String),  # the category; "true" / "false" for booleans; NULL for a number
    Column("comment", Text),
    Column("source", String(16)),  # api | cli | ui
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_leanllm_scores_event_id", "event_id"),
    Index("ix_leanllm_scores_name_value", "name", "value"),
)

# Columns the store adds beside the ``LLMEvent`` fields.
STORAGE_ONLY_COLUMNS = frozenset({"recorded_at"})
