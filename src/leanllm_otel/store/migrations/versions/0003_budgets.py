"""Guardrails: shared budget spend and state, guardrail events (budget warnings, anomalies).

Revision ID: 0003_budgets
Revises: 0002_security_recorded_at
Create Date: 2025-01-03
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_budgets"
down_revision: str | None = "0002_security_recorded_at"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "leanllm_budget_spend",
        sa.Column("budget_key", sa.String(), primary_key=True),
        sa.Column("bucket_start", sa.BigInteger(), primary_key=True),
        sa.Column("cost_usd", sa.Float(), nullable=False),
    )
    op.create_table(
        "leanllm_budget_state",
        sa.Column("budget_key", sa.String(), primary_key=True),
        sa.Column("pending_usd", sa.Float(), nullable=False),
        sa.Column("last_cost_usd", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "leanllm_guardrail_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("key", sa.String()),
        sa.Column("model", sa.String()),
        sa.Column("event_id", sa.String()),
        sa.Column("value", sa.Float()),
        sa.Column("threshold", sa.Float()),
        sa.Column("details", _json()),
    )
    op.create_index("ix_leanllm_guardrail_events_timestamp", "leanllm_guardrail_events", ["timestamp"])


def downgrade() -> None:
    op.drop_index("ix_leanllm_guardrail_events_timestamp", table_name="leanllm_guardrail_events")
    op.drop_table("leanllm_guardrail_events")
    op.drop_table("leanllm_budget_state")
    op.drop_table("leanllm_budget_spend")
