"""PostgreSQL's write of event rows: one ``INSERT ... SELECT * FROM unnest($1::type[], ...) ON CONFLICT (event_id)
DO NOTHING`` per batch, one array parameter per column, sent straight through asyncpg.

Three round trips (BEGIN, the statement, prepared once per set of columns and cached by asyncpg, COMMIT). Round trips
are what the write costs when the application keeps the GIL busy: the store's loop thread waits up to the
interpreter's switch interval after each one (findings 17 and 19 of ``benchmarks/README.md``). The multi-row
``INSERT ... VALUES`` it replaces took six (pre-ping's BEGIN / ping / ROLLBACK, BEGIN, the insert, COMMIT), and its
~18,000 parameters for 512 events cost the server more to parse than 30-odd arrays. Idempotency is the
conflict clause's, as before: event ids already stored, and repeats inside one batch, are skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from leanllm_otel.store.schema import events

_CACHED_STATEMENTS = 64  # per set of columns a workload's rows set, and of those constant in a batch


class UnnestInsert:
    """The statements of the unnest write for one dialect (built once per set of columns)."""

    def __init__(self, dialect: Dialect) -> None:
        preparer = dialect.identifier_preparer
        self._table = preparer.format_table(events)
        self._quoted = {column.key: preparer.quote(column.name) for column in events.c}
        self._types = {column.key: column.type.compile(dialect) for column in events.c}
        self._array_types = {key: f"{name}[]" for key, name in self._types.items()}
        self._statements: dict[tuple[tuple[str, ...], tuple[str, ...]], str] = {}

    def sql(self, columns: Sequence[str], constants: Sequence[str] = ()) -> str:
        """The statement writing one array per column of ``columns`` and one value for every row per column of
        ``constants`` (keys of ``schema.events``), in this parameter order."""
        key = (tuple(columns), tuple(constants))
        sql = self._statements.get(key)
        if sql is None:
            names = ", ".join(self._quoted[name] for name in (*columns, *constants))
            arrays = ", ".join(f"${index}::{self._array_types[name]}" for index, name in enumerate(columns, 1))
            aliases = ", ".join(f"v{index}" for index in range(1, len(columns) + 1))
            values = ", ".join(
                [f"u.v{index}" for index in range(1, len(columns) + 1)]
                + [f"${index}::{self._types[name]}" for index, name in enumerate(constants, len(columns) + 1)]
            )
            # The columns no row sets are left out: NULL, as the multi-row INSERT wrote them (none has a default).
            sql = (
                f"INSERT INTO {self._table} ({names}) SELECT {values} FROM unnest({arrays}) AS u({aliases}) "
                "ON CONFLICT (event_id) DO NOTHING"
            )
            if len(self._statements) >= _CACHED_STATEMENTS:
                self._statements.clear()
            self._statements[key] = sql
        return sql

    @staticmethod
    def split_constants(
        columns: Sequence[str], arrays: Sequence[list[Any]]
    ) -> tuple[list[str], list[list[Any]], list[str], list[Any]]:
        """``(columns, arrays)`` less the columns whose value is the same in every row, and those columns with their
        one value: a constant is sent once instead of once per row (the application's environment, provider,
        settings, the batch's ``recorded_at``: half of a typical row). ``event_id`` always varies."""
        varying: list[str] = []
        varying_arrays: list[list[Any]] = []
        constant: list[str] = []
        values: list[Any] = []
        for name, array in zip(columns, arrays, strict=True):
            if len(array) > 1 and name != "event_id" and array.count(array[0]) == len(array):
                constant.append(name)
                values.append(array[0])
            else:
                varying.append(name)
                varying_arrays.append(array)
        return varying, varying_arrays, constant, values

    async def write(self, engine: AsyncEngine, columns: list[str], arrays: Sequence[list[Any]]) -> None:
        """Write ``arrays`` (one per column of ``columns``, values converted for asyncpg) as one statement in one
        transaction.

        The engine runs without pre-ping (three round trips per write): a connection found dead here is dropped
        and the write tried once more on a new one, before any row was sent or after a write whose answer was lost
        (the conflict clause makes the repeat harmless).
        """
        varying, varying_arrays, constants, values = self.split_constants(columns, arrays)
        sql = self.sql(varying, constants)
        parameters = [*varying_arrays, *values]
        for attempt in (1, 2):
            async with engine.connect() as connection:
                driver = (await connection.get_raw_connection()).driver_connection
                assert driver is not None
                try:
                    # A transaction, not autocommit: a write cancelled before its COMMIT (timeout, shutdown) is rolled
                    # back when its connection closes, so a batch counted as dropped never lands later.
                    async with driver.transaction():
                        await driver.execute(sql, *parameters)
                    return
                except (Exception, asyncio.CancelledError) as exc:  # not GeneratorExit: no await then
                    if is_refused_value(exc):
                        raise
                    await connection.invalidate()  # its state after a cancelled or broken statement is unknown
                    if attempt == 2 or not _connection_lost(exc):
                        raise


def _connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection, not the write, failed: a socket error, a session the server ended
    (SQLSTATE classes 08 and 57, e.g. ``pg_terminate_backend``), or asyncpg's state for it broken."""
    if isinstance(exc, (ConnectionError, OSError)):
        return True
    from asyncpg.exceptions import OperatorInterventionError, PostgresConnectionError
    from asyncpg.exceptions._base import InterfaceError, InternalClientError

    return isinstance(exc, (PostgresConnectionError, OperatorInterventionError, InterfaceError, InternalClientError))


def is_refused_value(exc: BaseException) -> bool:
    """Whether asyncpg raised ``exc`` for a value of the batch: one the server refuses (SQLSTATE classes 22 data
    exception and 23 integrity violation) or one its codecs cannot encode (an int wider than 64 bits)."""
    if not type(exc).__module__.startswith("asyncpg"):
        return isinstance(exc, (OverflowError, ValueError, TypeError, UnicodeError))
    from asyncpg.exceptions import DataError, IntegrityConstraintViolationError
    from asyncpg.exceptions._base import DataError as ClientDataError

    return isinstance(exc, (DataError, IntegrityConstraintViolationError, ClientDataError))
