"""SQLAlchemy Core tables of the guardrails, as migration ``0003_budgets`` creates them.

- ``leanllm_budget_spend``: spend per budget key and time bucket (rolling windows sum the recent buckets);
- ``leanllm_budget_state``: one row per budget key; its row lock serialises admissions and settlements, and
  ``pending_usd`` holds the reservations of calls in flight;
- ``leanllm_guardrail_events``: budget warnings/exhaustion and anomalies, for ``leanllm-otel report``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, String, Table

from leanllm_otel.store.schema import UTCDateTime, json_type

metadata = MetaData()

budget_spend = Table(
    "leanllm_budget_spend",
    metadata,
    Column("budget_key", String, primary_key=True),
    Column("bucket_start", BigInteger, primary_key=True),  # epoch seconds
    Column("cost_usd", Float, nullable=False),
)

budget_state = Table(
    "leanllm_budget_state",
    metadata,
    Column("budget_key", String, primary_key=True),
    Column("pending_usd", Float, nullable=False),
    Column("last_cost_usd", Float, nullable=False),
    Column("updated_at", Float, nullable=False),  # epoch seconds
)

guardrail_events = Table(
    "leanllm_guardrail_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("timestamp", UTCDateTime, nullable=False),
    Column("kind", String, nullable=False),  # budget_warn | budget_exceeded | budget_blocked | anomaly
    Column("name", String, nullable=False),  # budget name or anomaly type
    Column("key", String),  # budget key or baseline key
    Column("model", String),
    Column("event_id", String),
    Column("value", Float),
    Column("threshold", Float),
    Column("details", json_type()),
    Index("ix_leanllm_guardrail_events_timestamp", "timestamp"),
)
