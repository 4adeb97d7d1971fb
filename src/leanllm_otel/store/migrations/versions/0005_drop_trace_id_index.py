"""Drop the trace id index: no query of the store filters on it, and it was the costliest write of a row.

Its keys are random (32 hex characters), so every insert touched a random page of it (the effect on the export
path is measured in ``benchmarks/README.md``).

Revision ID: 0005_drop_trace_id_index
Revises: 0004_content_counts
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005_drop_trace_id_index"
down_revision: str | None = "0004_content_counts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "leanllm_events"


def upgrade() -> None:
    op.drop_index("ix_leanllm_events_trace_id", table_name=_TABLE)


def downgrade() -> None:
    op.create_index("ix_leanllm_events_trace_id", _TABLE, ["trace_id"])
