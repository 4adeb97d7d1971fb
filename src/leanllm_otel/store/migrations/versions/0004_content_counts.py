"""Output message count and the truncation flag of captured content.

Revision ID: 0004_content_counts
Revises: 0003_budgets
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_content_counts"
down_revision: str | None = "0003_budgets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "leanllm_events"


def upgrade() -> None:
    op.add_column(_TABLE, sa.Column("output_message_count", sa.Integer()))
    op.add_column(_TABLE, sa.Column("content_truncated", sa.Boolean()))


def downgrade() -> None:
    with op.batch_alter_table(_TABLE) as batch:
        batch.drop_column("content_truncated")
        batch.drop_column("output_message_count")
