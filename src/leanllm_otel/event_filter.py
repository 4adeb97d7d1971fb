"""Which events a query covers: :class:`EventFilter`, shared by the query API, the CLI and the web viewer.

Every given criterion must match. Two criteria depend on what the store has (:class:`StoreFeatures`, from
:func:`probe_features`): ``text`` (search over stored content: PostgreSQL full text, SQLite FTS5, or a scan of the
content on SQLite stores migrated before revision 0007) and ``score`` (:class:`ScoreFilter`; no event matches on
a store without the scores table).

User input here (search text, score filters, times) is parsed with plain string methods, never regexes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    column,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from leanllm_otel.store.schema import (
    CONTENT_COLUMNS,
    CONTENT_SEARCH_TABLE,
    EVENTS_TABLE,
    SCORES_TABLE,
    content_tsvector,
    events,
    scores,
)

__all__ = ["EventFilter", "ScoreFilter", "StoreFeatures", "parse_time", "probe_features"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SCORE_OPERATORS = ("<=", ">=", "!=", "=", "<", ">")
_BOOLEAN_WORDS = {"true": 1.0, "false": 0.0, "up": 1.0, "down": 0.0}
_MAX_SEARCH_TERMS = 16


def parse_time(value: str) -> datetime:
    """ISO 8601 (``2025-01-31``, ``2025-01-31T12:00:00Z``; naive = UTC) or an age (``30m``, ``2h``, ``7d``).

    Raises ValueError with a message naming the accepted forms.
    """
    stripped = value.strip()
    unit = stripped[-1:].lower()
    if unit in _UNITS:
        try:
            amount = float(stripped[:-1].strip())
        except ValueError:
            amount = math.nan
        if math.isfinite(amount) and amount >= 0:
            return datetime.now(timezone.utc) - timedelta(seconds=amount * _UNITS[unit])
    try:
        parsed = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"invalid time {value!r}: use ISO 8601 (2025-01-31T12:00:00Z) or a relative age like 30m, 2h, 7d"
        ) from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


@dataclass(frozen=True)
class StoreFeatures:
    """What the store's schema offers beyond the events table."""

    dialect: str
    content_index: bool = False  # SQLite: the FTS5 table exists (PostgreSQL runs the same query either way)
    scores: bool = False


async def probe_features(connection: AsyncConnection) -> StoreFeatures:
    """Look at the schema (a catalog query; cheap enough to run per request)."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        names = set(
            (
                await connection.execute(
                    text("SELECT name FROM sqlite_master WHERE name IN (:fts, :scores)"),
                    {"fts": CONTENT_SEARCH_TABLE, "scores": SCORES_TABLE},
                )
            ).scalars()
        )
        return StoreFeatures(dialect, CONTENT_SEARCH_TABLE in names, SCORES_TABLE in names)
    present = (
        await connection.execute(text("SELECT to_regclass(:scores) IS NOT NULL"), {"scores": SCORES_TABLE})
    ).scalar_one()
    return StoreFeatures(dialect, True, bool(present))


@dataclass(frozen=True)
class ScoreFilter:
    """Events with a score called ``name`` (``operator`` None), or one whose value compares to ``value``.

    Numbers (and ``true``/``false``/``up``/``down``) compare with a score's number, other values with its label.
    """

    name: str
    operator: str | None = None
    value: str | None = None

    @classmethod
    def parse(cls, spec: str) -> ScoreFilter:
        """``NAME``, ``NAME=VALUE``, ``NAME!=VALUE``, ``NAME>=0.5`` (also ``>``, ``<``, ``<=``)."""
        for index, char in enumerate(spec):
            if char in "<>!=":
                two = spec[index : index + 2]
                operator = two if two in _SCORE_OPERATORS else char
                if operator not in _SCORE_OPERATORS:
                    break
                name, value = spec[:index].strip(), spec[index + len(operator) :].strip()
                if not name or not value:
                    break
                parsed = cls(name, operator, value)
                if operator not in ("=", "!=") and parsed._number() is None:
                    raise ValueError(f"invalid score filter {spec!r}: {operator} compares numbers")
                return parsed
        else:
            if spec.strip():
                return cls(spec.strip())
        raise ValueError(
            f"invalid score filter {spec!r}: expected NAME, NAME=VALUE or NAME>=NUMBER (also <, <=, >, !=)"
        )

    def _number(self) -> float | None:
        if self.value is None:
            return None
        lowered = self.value.lower()
        if lowered in _BOOLEAN_WORDS:
            return _BOOLEAN_WORDS[lowered]
        try:
            number = float(self.value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None

    def condition(self) -> ColumnElement[bool]:
        s = scores.c
        clauses: list[ColumnElement[bool]] = [s.event_id == events.c.event_id, s.name == self.name]
        if self.operator is not None:
            number = self._number()
            target: Any = s.value if number is not None else s.label
            operand: Any = number if number is not None else self.value
            comparisons = {
                "=": target == operand, "!=": target != operand, "<": target < operand,
                "<=": target <= operand, ">": target > operand, ">=": target >= operand,
            }  # fmt: skip
            clauses.append(comparisons[self.operator])
        return exists(select(s.score_id).where(and_(*clauses)))

    def __str__(self) -> str:
        return self.name if self.operator is None else f"{self.name}{self.operator}{self.value}"


def _search_terms(query: str) -> list[str]:
    return [term for term in query.split() if term][:_MAX_SEARCH_TERMS]


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def content_search(query: str, features: StoreFeatures) -> ColumnElement[bool] | None:
    """Events whose stored content has every term of ``query`` (None: no terms)."""
    terms = _search_terms(query)
    if not terms:
        return None
    if features.dialect == "postgresql":
        tsquery = func.websearch_to_tsquery(literal_column("'simple'::regconfig"), " ".join(terms))
        return content_tsvector().op("@@")(tsquery)
    if features.content_index:
        fts = table(CONTENT_SEARCH_TABLE, column("event_id"))
        # Each term a quoted FTS5 string: no user input is read as query syntax.
        match = " ".join('"' + term.replace('"', '""') + '"' for term in terms)
        matching = select(fts.c.event_id).where(literal_column(CONTENT_SEARCH_TABLE).op("MATCH")(match))
        return events.c.event_id.in_(matching)
    # A store without the FTS table (migrated before 0007): scan the JSON string values, substring match.
    per_term: list[ColumnElement[bool]] = []
    for position, term in enumerate(terms):
        name = f"content_term_{position}"
        any_column = or_(
            *(
                text(
                    f"EXISTS (SELECT 1 FROM json_tree(CASE WHEN json_valid({EVENTS_TABLE}.{col}) "
                    f"THEN {EVENTS_TABLE}.{col} ELSE 'null' END) "
                    f"WHERE type = 'text' AND value LIKE :{name} ESCAPE '\\')"
                ).bindparams(bindparam(name, f"%{_escape_like(term)}%"))
                for col in CONTENT_COLUMNS
            )
        )
        per_term.append(any_column)
    return and_(*per_term)


@dataclass(frozen=True)
class EventFilter:
    """Which events a query covers. Every given criterion must match (``labels``: every key=value pair)."""

    correlation_id: str | None = None
    model: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    since: datetime | None = None
    until: datetime | None = None
    errors_only: bool = False
    provider: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    min_cost: float | None = None
    min_latency_ms: float | None = None
    text: str | None = None  # search over stored content (every whitespace-separated term must occur)
    score: ScoreFilter | None = None

    @property
    def needs_features(self) -> bool:
        """Whether :meth:`conditions` needs the store's :class:`StoreFeatures`."""
        return bool(self.text and self.text.strip()) or self.score is not None

    def conditions(self, features: StoreFeatures | None = None) -> list[ColumnElement[bool]]:
        c = events.c
        conditions: list[ColumnElement[bool]] = []
        equal = (
            (c.correlation_id, self.correlation_id),
            (c.model, self.model),
            (c.provider, self.provider),
            (c["metadata"]["user_id"].as_string(), self.user_id),
            (c["metadata"]["session_id"].as_string(), self.session_id),
        )
        conditions.extend(col == value for col, value in equal if value is not None)
        for key, value in self.labels.items():
            conditions.append(c.labels[key].as_string() == str(value))
        if self.since is not None:
            conditions.append(c.timestamp >= _aware(self.since))
        if self.until is not None:
            conditions.append(c.timestamp < _aware(self.until))
        if self.errors_only:
            conditions.append(c.status == "error")
        if self.min_cost is not None:
            conditions.append(c.cost >= self.min_cost)
        if self.min_latency_ms is not None:
            conditions.append(c.latency_ms >= self.min_latency_ms)
        if self.needs_features:
            if features is None:
                raise ValueError("text and score filters need the store's features (probe_features)")
            if self.text:
                search = content_search(self.text, features)
                if search is not None:
                    conditions.append(search)
            if self.score is not None:
                conditions.append(self.score.condition() if features.scores else false())
        return conditions


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
