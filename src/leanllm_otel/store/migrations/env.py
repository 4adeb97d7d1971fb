"""Alembic environment for the leanllm event store.

Runs from the installed package with no ``alembic.ini``: the caller passes an open SQLAlchemy connection in
``config.attributes["connection"]`` (what :func:`leanllm_otel.store.engine.upgrade` does), or a URL in the
``sqlalchemy.url`` main option (sync or async driver; async URLs run on a private event loop). The version table is
``leanllm_alembic_version`` so the store can share a database with an application's own Alembic history.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection, create_engine
from sqlalchemy.ext.asyncio import create_async_engine

VERSION_TABLE = "leanllm_alembic_version"
# Serialises concurrent auto-migrations from several processes on PostgreSQL (arbitrary constant key).
_PG_ADVISORY_LOCK_KEY = 0x1EA7_11A0


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=None,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_ADVISORY_LOCK_KEY})
        context.run_migrations()


def _run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=None,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("leanllm migrations need config.attributes['connection'] or sqlalchemy.url")
    if "+aiosqlite" in url or "+asyncpg" in url:
        asyncio.run(_run_async(url))
        return
    engine = create_engine(url)
    try:
        with engine.begin() as sync_connection:
            _run(sync_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
