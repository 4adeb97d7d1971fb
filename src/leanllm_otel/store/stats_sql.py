"""The SQL behind :mod:`leanllm_otel.store.stats`: sums per group, and the percentiles of each backend.

A *grouping* says what one group is: a key expression over the event row (None: every matching event in one
group), and for labels the table-valued JSON function the events are joined with (``json_each`` on SQLite,
``jsonb_each_text`` on PostgreSQL), one row per ``name=value``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FromClause,
    Integer,
    Select,
    String,
    TextClause,
    and_,
    bindparam,
    case,
    cast,
    column,
    extract,
    func,
    literal,
    select,
    text,
    true,
    tuple_,
)

from leanllm_otel.store.schema import events

UNKNOWN_MODEL = "(unknown)"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# The percentiles computed: (measure column, quantiles, the GroupStats fields they fill).
PERCENTILES = (
    ("latency_ms", (0.5, 0.95), ("latency_p50_ms", "latency_p95_ms")),
    ("time_to_first_token_ms", (0.5,), ("ttft_p50_ms",)),
)
# The columns of a sums row (besides its keys): the additive GroupStats fields, then the number of latency and TTFT
# values (no min/max of the start time: the extent has it, and the text timestamps would make every sort wider).
ADDITIVE = ("calls", "errors", "input_tokens", "output_tokens", "total_tokens", "cost")
SUM_COLUMNS = (*ADDITIVE, "n_latency_ms", "n_time_to_first_token_ms")
# The planner guesses 100 rows per jsonb_each_text call, and JIT-compiling for those millions of imagined rows
# takes longer than the query itself (seconds): off for the statistics transaction only.
POSTGRES_NO_JIT: TextClause = text(
    "SELECT set_config('jit', 'off', true) WHERE current_setting('jit', true) IS NOT NULL"
)
_c = events.c


@dataclass(frozen=True)
class Grouping:
    """One group per distinct ``key`` (None: one group of everything), events joined with ``joined``."""

    key: ColumnElement[Any] | None = None
    joined: FromClause | None = None


def model_key() -> ColumnElement[str]:
    return case((func.coalesce(_c.model, "") == "", UNKNOWN_MODEL), else_=_c.model)


def _label_pairs(dialect: str, labels: Any) -> FromClause:
    expand = func.json_each if dialect == "sqlite" else func.jsonb_each_text
    return expand(labels).table_valued(column("key", String), column("value", String)).alias("label")


def label_grouping(dialect: str) -> Grouping:
    pairs = _label_pairs(dialect, _c.labels)
    return Grouping(pairs.c.key + "=" + pairs.c.value, pairs)


def bucket_key(dialect: str, start: datetime, size: timedelta) -> ColumnElement[int]:
    """The index of an event's time bucket from whole seconds since the epoch (bucket bounds are whole seconds,
    so dropping the fraction never moves an event across one)."""
    if dialect == "sqlite":
        # Naive UTC text 'YYYY-MM-DD HH:MM:SS.ffffff': cut the fraction off first, since SQLite's date functions
        # round it to milliseconds (10:59:59.9999 would count as 11:00:00).
        seconds: ColumnElement[int] = cast(func.strftime("%s", func.substr(_c.timestamp, 1, 19)), Integer)
    else:
        seconds = cast(func.floor(extract("epoch", _c.timestamp)), BigInteger)
    return (seconds - int((start - EPOCH).total_seconds())) // int(size.total_seconds())


def _where(statement: Select[Any], conditions: Sequence[ColumnElement[bool]]) -> Select[Any]:
    return statement.where(and_(*conditions)) if conditions else statement


def _event_sums() -> list[Any]:
    tokens = func.coalesce(_c.total_tokens, func.coalesce(_c.input_tokens, 0) + func.coalesce(_c.output_tokens, 0))
    parts = (
        func.count(), func.sum(case((_c.status == "error", 1), else_=0)), func.sum(_c.input_tokens),
        func.sum(_c.output_tokens), func.sum(tokens), func.sum(_c.cost), func.count(_c.latency_ms),
        func.count(_c.time_to_first_token_ms),
    )  # fmt: skip
    return [expression.label(name) for name, expression in zip(SUM_COLUMNS, parts, strict=True)]


def extent(conditions: Sequence[ColumnElement[bool]]) -> Select[Any]:
    """The first and last start time of the matching events, None when none match (two subqueries: each alone
    can walk the timestamp index from its end and stop at the first match)."""
    first = _where(select(func.min(_c.timestamp)), conditions).scalar_subquery()
    last = _where(select(func.max(_c.timestamp)), conditions).scalar_subquery()
    return select(first.label("first"), last.label("last"))


def sums(keys: Sequence[ColumnElement[Any]], conditions: Sequence[ColumnElement[bool]]) -> Select[Any]:
    """Sums per distinct combination of ``keys`` (columns ``k0``, ``k1``, ...)."""
    statement = select(*(key.label(f"k{i}") for i, key in enumerate(keys)), *_event_sums())
    return _where(statement, conditions).group_by(*keys)


def label_sums(dialect: str, conditions: Sequence[ColumnElement[bool]]) -> Select[Any]:
    """Sums per ``name=value`` (column ``k0``): the rows grouped by label set first, then each distinct set
    expanded (the JSON is read once per set, not once per event)."""
    per_set = _where(select(_c.labels.label("labels"), *_event_sums()), conditions).group_by(_c.labels)
    grouped = per_set.subquery("per_set")
    pairs = _label_pairs(dialect, grouped.c.labels)
    key = (pairs.c.key + "=" + pairs.c.value).label("k0")
    g = grouped.c
    rolled = [func.sum(g[name]).label(name) for name in SUM_COLUMNS]
    return select(key, *rolled).select_from(grouped.join(pairs, true())).group_by(key)


def _grouped(grouping: Grouping, columns: Sequence[Any], conditions: Sequence[ColumnElement[bool]]) -> Select[Any]:
    key = grouping.key if grouping.key is not None else literal("")
    statement = select(key.label("g"), *columns)
    if grouping.joined is not None:
        statement = statement.select_from(events.join(grouping.joined, true()))
    return _where(statement, conditions)


def postgres_percentiles(grouping: Grouping, conditions: Sequence[ColumnElement[bool]]) -> Select[Any]:
    """``percentile_cont`` of every measure per group (columns ``g`` and ``<measure>:<quantile>``)."""
    columns = [
        func.percentile_cont(q).within_group(_c[name]).label(f"{name}:{q}")
        for name, quantiles, _ in PERCENTILES
        for q in quantiles
    ]
    statement = _grouped(grouping, columns, conditions)
    return statement.group_by(grouping.key) if grouping.key is not None else statement


def sqlite_ranked(
    grouping: Grouping, conditions: Sequence[ColumnElement[bool]], name: str, targets: Sequence[tuple[Any, int]]
) -> Select[Any]:
    """``(g, r, v)``: the value ``v`` of column ``name`` at each 0-based rank ``r`` of ``targets`` (pairs
    ``(group key, rank)``) in its group's ascending order. One pass numbers every group's values; only the
    targeted rows come back."""
    value = _c[name]
    # The key computed once per row in a subquery: named in both the select list and PARTITION BY, SQLite would
    # evaluate it again for each (nearly doubling the pass over a computed key such as the time bucket).
    source = _grouped(grouping, [value.label("v")], [*conditions, value.is_not(None)]).subquery("source")
    partition = source.c.g if grouping.key is not None else None
    numbered = func.row_number().over(partition_by=partition, order_by=source.c.v) - 1
    ranked = select(source.c.g, source.c.v, numbered.label("r")).subquery("ranked")
    wanted = func.json_each(bindparam(f"ranks_{name}", json.dumps(list(targets)))).table_valued("value")
    pairs = select(func.json_extract(wanted.c.value, "$[0]"), func.json_extract(wanted.c.value, "$[1]"))
    r = ranked.c
    return select(r.g, r.r, r.v).where(tuple_(r.g, r.r).in_(pairs))


def ranks(count: int, q: float) -> tuple[int, int, float]:
    """The 0-based ranks around the ``q`` percentile of ``count`` ascending values, and the upper one's weight
    (``percentile_cont``: position ``(count - 1) * q``)."""
    position = (count - 1) * q
    low = math.floor(position)
    return low, min(low + 1, count - 1), position - low


def interpolate(low_value: float, high_value: float, weight: float) -> float:
    """The value between the two ranks of :func:`ranks` (the arithmetic of ``percentile_cont``)."""
    return low_value + (high_value - low_value) * weight
