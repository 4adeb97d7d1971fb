"""The event store's INSERT: compiled once per dialect, rows turned into driver parameters without SQLAlchemy's
per-row bind processing.

Rows are written as multi-row ``INSERT ... VALUES (...), (...) ON CONFLICT (event_id) DO NOTHING`` statements, in
which the columns no row of the statement sets are literal ``NULL`` rather than bound parameters. An event has some
sixty columns and a typical span sets about half, so binding the NULLs would be a large share of SQLite's cost per
row (measured by ``benchmarks/sqlite_gil.py``). Statements take a power-of-two number of rows
(:func:`statement_sizes`: a full batch of 512 is one statement, 37 rows are 32 + 4 + 1), so the texts recur and
SQLite's driver reuses their prepared form instead of parsing a new text for every batch length.
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import types as sa_types
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import Insert

from leanllm_otel.event import row_defaults
from leanllm_otel.store.schema import UTCDateTime, events

# asyncpg (the PostgreSQL wire protocol) takes at most 32767 parameters per statement.
_POSTGRESQL_MAX_PARAMETERS = 32767
# The most rows one statement takes, parameter limit permitting (each statement is several thread hand-offs through
# the async driver, each costing up to the interpreter's switch interval when the application holds the GIL);
# ``statement_sizes`` cuts a batch into power-of-two statements under it.
_MAX_ROWS_PER_STATEMENT = 1000
_CACHED_PLANS = 64  # per (columns set, row count): the shapes of a workload's calls, each in a few lengths
_NUMBERED_PARAMETER = re.compile(r"\$\d+")
_NUMBERED_PLACEHOLDER = re.compile(r"\$\d+(::[A-Z][A-Z ]*)?")
_QMARK_PLACEHOLDER = re.compile(r"\?")


# "YYYY-MM-DD HH:MM:SS" of recent whole seconds (UTC): a batch's timestamps share a few, and ``isoformat`` (a printf,
# and the "+00:00" it writes only to be cut off) was a tenth of the SQLite export's CPU.
_SECOND_TEXTS: dict[int, str] = {}
_MAX_SECOND_TEXTS = 4096
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_SECOND = timedelta(seconds=1)


def _sqlite_datetime(value: datetime | None) -> str | None:
    """The text form SQLAlchemy's SQLite DATETIME type writes and reads back (UTC, naive, microseconds): what
    ``isoformat(" ", "microseconds")`` writes for the value in UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.isoformat(" ", "microseconds")
    if value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    second = (value - _EPOCH) // _ONE_SECOND  # exact (a float timestamp rounds .999999 up in far years)
    text = _SECOND_TEXTS.get(second)
    if text is None:
        text = value.replace(microsecond=0, tzinfo=None).isoformat(" ")
        if len(_SECOND_TEXTS) >= _MAX_SECOND_TEXTS:
            _SECOND_TEXTS.clear()
        _SECOND_TEXTS[second] = text
    return f"{text}.{value.microsecond:06d}"


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return None if value is None else value.replace(tzinfo=timezone.utc)
    return value


_json_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_json_string = json.encoder.encode_basestring  # the C string encoder json.dumps itself uses (ensure_ascii=False)
_FLOAT_MAX = sys.float_info.max
_FLOAT_MIN = -_FLOAT_MAX


def _json_scalar(value: Any) -> str | None:
    """``value`` as JSON when it is a string, an int, a bool or a finite float; else None."""
    kind = type(value)
    if kind is str:
        return _json_string(value)
    if kind is int:
        return int.__repr__(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is float and _FLOAT_MIN <= value <= _FLOAT_MAX:  # json.dumps writes NaN / Infinity differently
        return float.__repr__(value)
    return None


def json_text(value: Any) -> str | None:
    """``value`` as the JSON text ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))`` writes."""
    # Most JSON columns of a row hold {} / [] or a few scalars (labels, metadata, request parameters, finish
    # reasons): those are written here directly; anything else goes through the encoder.
    if value is None:
        return None
    if type(value) is dict:
        if not value:
            return "{}"
        parts = []
        for key, item in value.items():
            text = _json_scalar(item)
            if type(key) is not str or text is None:
                return _json_encode(value)
            parts.append(f"{_json_string(key)}:{text}")
        return "{" + ",".join(parts) + "}"
    if type(value) is list:
        if not value:
            return "[]"
        texts = [_json_scalar(item) for item in value]
        if None not in texts:
            return "[" + ",".join(texts) + "]"  # type: ignore[arg-type]
    return _json_encode(value)


def _sqlite_bool(value: Any) -> int | None:
    return None if value is None else int(bool(value))


def _sqlite_max_parameters() -> int:
    getlimit = getattr(sqlite3.Connection, "getlimit", None)  # Python 3.11+
    if getlimit is not None:
        with sqlite3.connect(":memory:") as probe:
            return int(probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    return 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999  # SQLite's documented defaults


def _insert(dialect: Dialect) -> Insert:
    module = postgresql if dialect.name == "postgresql" else sqlite
    statement: Insert = module.insert(events)
    return statement.on_conflict_do_nothing(index_elements=["event_id"])  # type: ignore[attr-defined,no-any-return]


@dataclass(frozen=True)
class _Plan:
    """How a chunk whose rows set the same columns is written: its statement and where each value goes."""

    sql: str
    slots: dict[str, tuple[int, Callable[[Any], Any] | None]]  # column -> (index among bound values, converter)
    defaults: list[Any]  # one row's bound values before its fields are filled in


class PreparedInsert:
    """``INSERT ... ON CONFLICT (event_id) DO NOTHING`` compiled once by SQLAlchemy Core for one dialect.

    Rows become positional parameters through one converter per column (JSON text, UTC datetimes, SQLite
    booleans): SQLAlchemy's per-row bind processing cost more than the database write itself. A row may be
    sparse (only the fields its span set, see ``event.span_row_values``); the other columns take the converted
    defaults of ``event.row_defaults()``. A column that is NULL by default and set by no row of a statement is
    written as a literal ``NULL`` instead of one bound parameter per row: binding them cost SQLite about half of
    the insert (half of an event's ~60 columns are NULL).

    The statement texts are built from SQLAlchemy's compiled one-row statement (its placeholders, with their
    PostgreSQL casts), checked once against its compiled two-row statement; if the two ever disagree, every
    statement carries one row with every column bound, exactly as compiled.
    """

    def __init__(self, dialect: Dialect) -> None:
        names = list(events.c.keys())
        one_row = _insert(dialect).values([dict.fromkeys(names)]).compile(dialect=dialect)
        if one_row.positiontup is None:  # pragma: no cover - both async drivers use positional parameters
            raise RuntimeError(f"unsupported paramstyle for {dialect.name}")
        self.sql = str(one_row)
        self._columns = [name.removesuffix("_m0") for name in one_row.positiontup]
        self._numbered = dialect.name == "postgresql"
        self._converters = self._column_converters(on_sqlite=dialect.name == "sqlite")
        defaults = row_defaults()
        self._defaults = [
            default if convert is None else convert(default)
            for default, convert in ((defaults.get(name), self._converters[name]) for name in self._columns)
        ]
        # Columns every statement binds: a non-NULL default must be written as a value.
        self._always_bound = frozenset(
            name for name, default in zip(self._columns, self._defaults, strict=True) if default is not None
        )
        self._plans: dict[tuple[frozenset[str], int], _Plan] = {}
        self._max_parameters = _POSTGRESQL_MAX_PARAMETERS if self._numbered else _sqlite_max_parameters()
        self._split = self._split_statement()
        two_rows = str(_insert(dialect).values([dict.fromkeys(names)] * 2).compile(dialect=dialect))
        if self._split is None or self._plan(frozenset(self._columns), 2).sql != two_rows:
            self._split = None
        self._plans.clear()
        # Rows one statement takes when every column is bound; sparser rows fit more, up to the same cap.
        self.max_rows_per_statement = self._rows_per_statement(len(self._columns)) if self._split is not None else 1

    def _rows_per_statement(self, bound_columns: int) -> int:
        return max(1, min(_MAX_ROWS_PER_STATEMENT, self._max_parameters // max(1, bound_columns)))

    def _column_converters(self, *, on_sqlite: bool) -> dict[str, Callable[[Any], Any] | None]:
        converters: dict[str, Callable[[Any], Any] | None] = {}
        for name in self._columns:
            column_type = events.c[name].type
            converter: Callable[[Any], Any] | None = None
            if isinstance(column_type, sa_types.JSON):
                converter = json_text
            elif isinstance(column_type, UTCDateTime):
                converter = _sqlite_datetime if on_sqlite else _utc
            elif isinstance(column_type, sa_types.Boolean) and on_sqlite:
                converter = _sqlite_bool
            converters[name] = converter
        return converters

    def _split_statement(self) -> tuple[str, list[str], str] | None:
        """``(text before the row, each column's placeholder with its cast, text after)``, or None if unexpected."""
        values_at = self.sql.find(" VALUES (")
        conflict_at = self.sql.rfind(") ON CONFLICT ")
        if values_at < 0 or conflict_at < 0:
            return None
        placeholders = self.sql[values_at + 9 : conflict_at].split(", ")
        pattern = _NUMBERED_PLACEHOLDER if self._numbered else _QMARK_PLACEHOLDER
        if len(placeholders) != len(self._columns) or not all(pattern.fullmatch(p) for p in placeholders):
            return None
        casts = [_NUMBERED_PARAMETER.sub("", p) for p in placeholders]  # "$7::JSONB" -> "::JSONB"; "?" -> "?"
        return self.sql[: values_at + 8], casts, self.sql[conflict_at + 1 :]

    def _plan(self, bound: frozenset[str], rows: int) -> _Plan:
        key = (bound, rows)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        slots: dict[str, tuple[int, Callable[[Any], Any] | None]] = {}
        defaults: list[Any] = []
        for name, default in zip(self._columns, self._defaults, strict=True):
            if name in bound:
                slots[name] = (len(defaults), self._converters[name])
                defaults.append(default)
        if self._split is None:
            sql = self.sql
        else:
            prefix, casts, suffix = self._split
            placeholders = [
                "NULL" if name not in bound else "${}" + cast if self._numbered else "?"
                for name, cast in zip(self._columns, casts, strict=True)
            ]
            row_text = "(" + ", ".join(placeholders) + ")"
            if self._numbered:  # PostgreSQL numbers its parameters across the whole statement
                width = len(defaults)
                texts = [row_text.format(*range(row * width + 1, row * width + width + 1)) for row in range(rows)]
            else:
                texts = [row_text] * rows
            sql = prefix + ", ".join(texts) + suffix
        plan = _Plan(sql, slots, defaults)
        if len(self._plans) >= _CACHED_PLANS:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def statements(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, tuple[Any, ...]]]:
        """``rows`` as ``(sql, flat parameters)`` statements, as few as the parameter limit allows."""
        if self._split is None:
            plan = self._plan(frozenset(self._columns), 1)
            return [(plan.sql, tuple(_values(plan, row))) for row in rows]
        columns, arrays = self.arrays(rows)
        bound = frozenset(columns)
        result: list[tuple[str, tuple[Any, ...]]] = []
        start = 0
        for size in statement_sizes(len(rows), self._rows_per_statement(len(columns))):
            stop = start + size
            plan = self._plan(bound, size)
            chunk = arrays if start == 0 and stop == len(rows) else [array[start:stop] for array in arrays]
            result.append((plan.sql, tuple(itertools.chain.from_iterable(zip(*chunk, strict=True)))))
            start = stop
        return result

    def arrays(self, rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
        """``rows`` column-wise: ``(columns, one list of converted values per column)``, the columns some row (or a
        non-NULL default) sets, in table order (the statement's placeholder order), for the multi-row INSERT and the
        write of one array per column (``store.pg_write``)."""
        bound = self._always_bound.union(*(row.keys() for row in rows)) & frozenset(self._columns)
        plan = self._plan(bound, 1)
        arrays: list[list[Any]] = []
        for name, (index, convert) in plan.slots.items():
            default = plan.defaults[index]
            # One comprehension per column: much cheaper than filling every row's value list in a Python loop.
            if convert is None:
                arrays.append([row.get(name, default) for row in rows])
                continue
            first = rows[0].get(name, default) if rows else default
            if all(row.get(name, default) is first for row in rows):  # one value for the batch (its recorded_at)
                arrays.append([default if first is default else convert(first)] * len(rows))
            else:
                arrays.append([convert(row[name]) if name in row else default for row in rows])
        return list(plan.slots), arrays


def statement_sizes(count: int, limit: int) -> list[int]:
    """How many rows each statement of a ``count``-row write takes: powers of two, largest first, none over
    ``limit``. A workload's writes then use a few statement texts, which the driver keeps prepared: SQLite took
    longer to parse a multi-row INSERT of a new length (~100,000 instructions a row) than to run it."""
    largest = 1 << (max(1, limit).bit_length() - 1)
    sizes = [largest] * (count // largest)
    rest = count % largest
    while rest:
        size = 1 << (rest.bit_length() - 1)
        sizes.append(size)
        rest -= size
    return sizes


def _values(plan: _Plan, row: Mapping[str, Any]) -> list[Any]:
    """One row's bound values for ``plan``: its defaults, overwritten with the row's converted fields."""
    values = plan.defaults.copy()
    slots = plan.slots
    for name, value in row.items():
        slot = slots.get(name)
        if slot is not None:
            index, convert = slot
            values[index] = value if convert is None else convert(value)
    return values
