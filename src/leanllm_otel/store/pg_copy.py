"""PostgreSQL's bulk write of event rows: binary ``COPY`` into a staging table, then one
``INSERT ... SELECT ... ON CONFLICT (event_id) DO NOTHING``, in one transaction.

A multi-row ``INSERT ... VALUES`` of 512 events binds ~18,000 parameters that the server parses and plans per
statement; the binary COPY plus the constant ``INSERT ... SELECT`` cost the server about half as much (finding 19 of
``benchmarks/README.md``). The staging table is a session's temporary table (``ON COMMIT DELETE ROWS``), created with
``IF NOT EXISTS`` inside each write's transaction, so the write also works when a pooler (pgbouncer's transaction
mode) hands each transaction another server session. Idempotency stays the target table's: the conflict clause
skips event ids already stored, and repeats inside one batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from leanllm_otel.store.schema import events

STAGING_TABLE = "leanllm_events_stage"


class CopyInsert:
    """The statements of the COPY write for one dialect's quoting (built once)."""

    def __init__(self, dialect: Dialect) -> None:
        preparer = dialect.identifier_preparer
        table = preparer.format_table(events)
        columns = ", ".join(preparer.quote(column.name) for column in events.c)
        self.create_sql = f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING_TABLE} (LIKE {table}) ON COMMIT DELETE ROWS"
        # Every column: the ones no row set are NULL in the staging table, as the multi-row INSERT writes them.
        self.insert_sql = (
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {STAGING_TABLE} ON CONFLICT (event_id) DO NOTHING"
        )

    async def write(self, engine: AsyncEngine, columns: list[str], records: Sequence[tuple[Any, ...]]) -> None:
        """Write ``records`` (values of ``columns``, converted for asyncpg) in one transaction.

        A connection that failed for another reason than a refused value is invalidated (dropped from the pool):
        its session state (an open transaction after a cancelled COPY) is unknown.
        """
        async with engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            try:
                async with driver.transaction():
                    await driver.execute(self.create_sql)
                    await driver.copy_records_to_table(STAGING_TABLE, records=records, columns=columns)
                    await driver.execute(self.insert_sql)
            except (Exception, asyncio.CancelledError) as exc:  # not GeneratorExit: no await then
                if not is_refused_value(exc):
                    await connection.invalidate()
                raise


def is_refused_value(exc: BaseException) -> bool:
    """Whether asyncpg raised ``exc`` for a value of the batch: one the server refuses (SQLSTATE classes 22 data
    exception and 23 integrity violation) or one its codecs cannot encode (an int wider than 64 bits)."""
    if not type(exc).__module__.startswith("asyncpg"):
        return isinstance(exc, (OverflowError, ValueError, TypeError, UnicodeError))
    from asyncpg.exceptions import DataError, IntegrityConstraintViolationError
    from asyncpg.exceptions._base import DataError as ClientDataError

    return isinstance(exc, (DataError, IntegrityConstraintViolationError, ClientDataError))
