"""Full-text search over stored content.

PostgreSQL: a GIN index over the ``tsvector`` of every JSON string value of the content columns (``simple``
configuration); the query in ``leanllm_otel.event_filter`` spells the same expression, so stores without this
index answer the same query by a scan. The index build holds a write lock on the table while it runs.

SQLite: an FTS5 table ``leanllm_events_fts(event_id UNINDEXED, body)`` filled from existing rows here and from new
rows by an ``AFTER INSERT`` trigger, so writers of any version keep it current. Events are never updated (writes are
``ON CONFLICT DO NOTHING``); a deleted event leaves an index entry that matches no row. When the SQLite library lacks
FTS5, nothing is created and searches scan the content instead.

Revision ID: 0007_content_search
Revises: 0006_scores
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0007_content_search"
down_revision: str | None = "0006_scores"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "leanllm_events"
_FTS = "leanllm_events_fts"
_TRIGGER = "leanllm_events_fts_insert"
_INDEX = "ix_leanllm_events_content_search"
_COLUMNS = ("system_instructions", "input_messages", "output_messages", "tool_calls")
# JSON keys whose string values are structure, not content.
_SKIPPED_KEYS = "('type', 'role', 'finish_reason', 'modality', 'mime_type')"


def _pg_vector() -> str:
    return " || ".join(
        f"coalesce(jsonb_to_tsvector('simple'::regconfig, {name}, '[\"string\"]'::jsonb), ''::tsvector)"
        for name in _COLUMNS
    )


def _sqlite_body(row: str) -> str:
    """SQL for the searchable text of ``row`` (``new`` in the trigger, the table alias in the backfill)."""
    leaves = " UNION ALL ".join(
        f"SELECT value FROM json_tree(CASE WHEN json_valid({row}.{name}) THEN {row}.{name} ELSE 'null' END) "
        f"WHERE type = 'text' AND coalesce(key, '') NOT IN {_SKIPPED_KEYS}"
        for name in _COLUMNS
    )
    return f"(SELECT group_concat(value, ' ') FROM ({leaves}))"


def _has_content(row: str) -> str:
    return " OR ".join(f"{row}.{name} IS NOT NULL" for name in _COLUMNS)


def _sqlite_has_fts5() -> bool:
    options = op.get_bind().execute(text("PRAGMA compile_options")).scalars().all()
    return "ENABLE_FTS5" in options


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(f"CREATE INDEX {_INDEX} ON {_TABLE} USING gin (({_pg_vector()}))")
        return
    if dialect != "sqlite" or not _sqlite_has_fts5():
        return
    op.execute(f"CREATE VIRTUAL TABLE {_FTS} USING fts5(event_id UNINDEXED, body, tokenize = 'unicode61')")
    op.execute(
        f"INSERT INTO {_FTS} (event_id, body) SELECT event_id, body FROM "
        f"(SELECT e.event_id AS event_id, {_sqlite_body('e')} AS body FROM {_TABLE} AS e WHERE {_has_content('e')}) "
        "WHERE body IS NOT NULL"
    )
    op.execute(
        f"CREATE TRIGGER {_TRIGGER} AFTER INSERT ON {_TABLE} WHEN {_has_content('new')} BEGIN "
        f"INSERT INTO {_FTS} (event_id, body) SELECT new.event_id, body FROM (SELECT {_sqlite_body('new')} AS body) "
        "WHERE body IS NOT NULL; END"
    )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {_INDEX}")
    elif dialect == "sqlite":
        op.execute(f"DROP TRIGGER IF EXISTS {_TRIGGER}")
        op.execute(f"DROP TABLE IF EXISTS {_FTS}")
