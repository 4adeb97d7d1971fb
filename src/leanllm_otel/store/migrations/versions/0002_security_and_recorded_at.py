"""Security findings, normalized features, recorded_at; indexes for errors, traces and tailing.

Revision ID: 0002_security_recorded_at
Revises: 0001_initial
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_security_recorded_at"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "leanllm_events"


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    # Plain ADD COLUMN (no batch/table copy): nullable columns, so existing rows are kept as they are.
    op.add_column(_TABLE, sa.Column("findings", _json()))
    op.add_column(_TABLE, sa.Column("max_severity", sa.String()))
    op.add_column(_TABLE, sa.Column("blocked", sa.Boolean()))
    op.add_column(_TABLE, sa.Column("block_reason", sa.String()))
    op.add_column(_TABLE, sa.Column("normalized_input", _json()))
    op.add_column(_TABLE, sa.Column("normalized_output", _json()))
    op.add_column(_TABLE, sa.Column("recorded_at", sa.DateTime(timezone=True)))
    op.create_index("ix_leanllm_events_status_timestamp", _TABLE, ["status", "timestamp"])
    op.create_index("ix_leanllm_events_trace_id", _TABLE, ["trace_id"])
    op.create_index("ix_leanllm_events_recorded_at", _TABLE, ["recorded_at"])


def downgrade() -> None:
    op.drop_index("ix_leanllm_events_recorded_at", table_name=_TABLE)
    op.drop_index("ix_leanllm_events_trace_id", table_name=_TABLE)
    op.drop_index("ix_leanllm_events_status_timestamp", table_name=_TABLE)
    with op.batch_alter_table(_TABLE) as batch:
        for column in (
            "recorded_at",
            "normalized_output",
            "normalized_input",
            "block_reason",
            "blocked",
            "max_severity",
            "findings",
        ):
            batch.drop_column(column)
