"""Feedback scores on stored events: the :class:`Score` record, its validation, and its SQL.

A score has a ``name`` (``"user_feedback"``, ``"relevance"``) and a value that is a number, a boolean or a category
(a short string). Any number of scores may be given to one event, also before the event itself reaches the store.
Writing a score is :func:`leanllm_otel.score` (``leanllm_otel.feedback``); this module only knows the record.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from leanllm_otel.store.schema import scores

__all__ = [
    "MAX_COMMENT_CHARS",
    "Score",
    "ScoreKind",
    "ScoreValue",
    "insert_score",
    "make_score",
    "parse_value",
    "score_names",
    "scores_for",
]

ScoreValue = bool | int | float | str
ScoreKind = Literal["numeric", "boolean", "category"]
SOURCES = ("api", "cli", "ui")
MAX_NAME_CHARS = 200
MAX_LABEL_CHARS = 200
MAX_COMMENT_CHARS = 10_000
_COLUMNS = tuple(column.name for column in scores.columns)


@dataclass(frozen=True)
class Score:
    """One stored score. ``value`` is the number (booleans 1.0 / 0.0), ``label`` the category (or "true"/"false")."""

    score_id: str
    event_id: str
    name: str
    kind: ScoreKind
    value: float | None
    label: str | None
    comment: str | None
    source: str
    created_at: datetime

    @property
    def display(self) -> str:
        """The value as a person reads it."""
        if self.kind == "numeric" and self.value is not None:
            return f"{self.value:g}"
        return self.label or ""

    def to_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _COLUMNS}

    def to_payload(self) -> dict[str, Any]:
        """JSON-ready form (CLI ``--json``, the viewer's export)."""
        return {**self.to_row(), "created_at": self.created_at.isoformat()}


def _text(value: Any, field: str, limit: int) -> str:
    if not isinstance(value, str):
        raise ValueError(f"score {field} must be a string, got {type(value).__name__}")
    stripped = value.strip()
    if not stripped:
        raise ValueError(f"score {field} must not be empty")
    if len(stripped) > limit:
        raise ValueError(f"score {field} is longer than {limit} characters")
    return stripped


def _kind_value_label(value: Any) -> tuple[ScoreKind, float | None, str | None]:
    if isinstance(value, bool):
        return "boolean", 1.0 if value else 0.0, "true" if value else "false"
    if isinstance(value, (int, float)):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"score value must be a finite number, got {value!r}")
        return "numeric", number, None
    if isinstance(value, str):
        return "category", None, _text(value, "value", MAX_LABEL_CHARS)
    raise ValueError(f"score value must be a number, a boolean or a string, got {type(value).__name__}")


def make_score(
    event_id: str,
    name: str,
    value: ScoreValue,
    comment: str | None = None,
    *,
    source: str = "api",
    now: datetime | None = None,
) -> Score:
    """A validated score (ValueError naming the field otherwise). ``comment`` is kept as given (see ``feedback``)."""
    event_id = _text(event_id, "event_id", 200)
    name = _text(name, "name", MAX_NAME_CHARS)
    kind, number, label = _kind_value_label(value)
    if comment is not None:
        if not isinstance(comment, str):
            raise ValueError(f"score comment must be a string, got {type(comment).__name__}")
        if len(comment) > MAX_COMMENT_CHARS:
            raise ValueError(f"score comment is longer than {MAX_COMMENT_CHARS} characters")
        comment = comment.strip() or None
    if source not in SOURCES:
        raise ValueError(f"score source must be one of {', '.join(SOURCES)}, got {source!r}")
    return Score(
        score_id=uuid.uuid4().hex,
        event_id=event_id,
        name=name,
        kind=kind,
        value=number,
        label=label,
        comment=comment,
        source=source,
        created_at=now or datetime.now(timezone.utc),
    )


def parse_value(text: str) -> ScoreValue:
    """A value typed by a person (CLI, form): ``true``/``false`` (also ``up``/``down``), a number, else a category."""
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered in ("true", "up", "yes"):
        return True
    if lowered in ("false", "down", "no"):
        return False
    try:
        number = float(stripped)
    except ValueError:
        return stripped
    return int(number) if number.is_integer() and "." not in stripped and "e" not in lowered else number


def _from_row(row: Any) -> Score:
    mapping = row._mapping
    return Score(**{name: mapping[name] for name in _COLUMNS})


async def insert_score(connection: AsyncConnection, score: Score) -> None:
    await connection.execute(insert(scores).values(score.to_row()))


async def scores_for(connection: AsyncConnection, event_ids: Sequence[str]) -> dict[str, list[Score]]:
    """The scores of each of ``event_ids``, oldest first (events without scores are absent)."""
    found: dict[str, list[Score]] = {}
    if not event_ids:
        return found
    statement = (
        select(scores)
        .where(scores.c.event_id.in_(list(event_ids)))
        .order_by(scores.c.created_at.asc(), scores.c.score_id.asc())
    )
    for row in await connection.execute(statement):
        score = _from_row(row)
        found.setdefault(score.event_id, []).append(score)
    return found


async def score_names(connection: AsyncConnection, limit: int = 100) -> list[str]:
    """Distinct score names in the store, alphabetically."""
    statement = select(scores.c.name).distinct().order_by(scores.c.name).limit(limit)
    return list((await connection.execute(statement)).scalars())
