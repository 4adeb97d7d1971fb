"""Feedback scores: ``leanllm_scores``, any number per event (numeric, boolean or category values).

Revision ID: 0006_scores
Revises: 0005_drop_trace_id_index
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_scores"
down_revision: str | None = "0005_drop_trace_id_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "leanllm_scores"


def upgrade() -> None:
    op.create_table(
        _TABLE,
        sa.Column("score_id", sa.String(32), primary_key=True),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.Float()),
        sa.Column("label", sa.String()),
        sa.Column("comment", sa.Text()),
        sa.Column("source", sa.String(16)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_leanllm_scores_event_id", _TABLE, ["event_id"])
    op.create_index("ix_leanllm_scores_name_value", _TABLE, ["name", "value"])


def downgrade() -> None:
    op.drop_index("ix_leanllm_scores_name_value", table_name=_TABLE)
    op.drop_index("ix_leanllm_scores_event_id", table_name=_TABLE)
    op.drop_table(_TABLE)
