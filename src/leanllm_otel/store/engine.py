"""Database plumbing shared by the SQL exporter, the query API and the CLI.

- :func:`async_database_url` validates a user URL (``sqlite:///...`` / ``postgresql://...``) and gives the async
  driver form SQLAlchemy needs.
- :func:`create_engine` builds an ``AsyncEngine`` with the settings each backend wants (SQLite: WAL, busy
  timeout, parent directories created; PostgreSQL: pre-ping, connect timeout).
- :class:`~leanllm_otel.store.loop.LoopThread` (importable from here too) runs coroutines on a private event
  loop from synchronous code. :class:`Database` pairs one with a lazily created engine and survives
  ``fork()``: a child drops the parent's loop and connections and opens its own.
- :func:`upgrade` runs the Alembic migrations shipped inside the package (no ``alembic.ini`` needed).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import ValidationError
from sqlalchemy import event

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from leanllm_otel.config import LeanLLMConfig, mask_url
from leanllm_otel.store.loop import FORK_ORPHANS
from leanllm_otel.store.loop import LoopThread as LoopThread
from leanllm_otel.store.sqlite_write import apply_pragmas

T = TypeVar("T")

VERSION_TABLE = "leanllm_alembic_version"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def async_database_url(database_url: str) -> str:
    """The SQLAlchemy async URL for a ``sqlite:///`` or ``postgresql://`` URL. Raises ValueError if malformed.

    The error text never contains the password.
    """
    try:
        url = LeanLLMConfig(database_url=database_url).sqlalchemy_async_url
    except ValidationError as exc:
        messages = [str(error["msg"]).removeprefix("Value error, ") for error in exc.errors(include_input=False)]
        raise ValueError("; ".join(messages) or f"invalid database URL {mask_url(database_url)!r}") from None
    assert url is not None
    try:
        make_url(url)
    except Exception as exc:
        raise ValueError(f"{mask_url(database_url)!r} is not a valid database URL: {type(exc).__name__}") from None
    return url


def is_sqlite(async_url: str) -> bool:
    return async_url.startswith("sqlite")


def sqlite_path(async_url: str) -> str | None:
    """The file of a SQLite URL (None for in-memory / URI forms and for other backends)."""
    if not is_sqlite(async_url):
        return None
    database = make_url(async_url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def read_only_sqlite_url(async_url: str) -> str:
    """The ``mode=ro`` URI form of a SQLite file URL: no write, no file created, WAL readers beside a writer."""
    path = sqlite_path(async_url)
    if path is None:
        return async_url
    absolute = Path(path).expanduser().resolve()
    return f"sqlite+aiosqlite:///file:{quote(str(absolute))}?mode=ro&uri=true"


def create_engine(
    async_url: str,
    *,
    sqlite_busy_timeout_ms: int = 5000,
    connect_timeout_s: float = 10.0,
    read_only: bool = False,
    pre_ping: bool = True,
) -> AsyncEngine:
    """An ``AsyncEngine`` for ``async_url`` (from :func:`async_database_url`), tuned per backend.

    ``read_only``: SQLite files open in ``mode=ro``; PostgreSQL sessions default to read-only transactions.
    ``pre_ping=False``: PostgreSQL connections are not checked out with a ping (three round trips) but used as they
    are; for a caller that handles a dead connection itself (``store.pg_write``).
    """
    if is_sqlite(async_url):
        if read_only:
            async_url = read_only_sqlite_url(async_url)
        path = sqlite_path(async_url)
        if path is not None:
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"connect_args": {"timeout": sqlite_busy_timeout_ms / 1000.0}}
        if path is None and ":memory:" in async_url:
            kwargs["poolclass"] = StaticPool  # one shared in-memory database, not one per connection
        engine = create_async_engine(async_url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            apply_pragmas(dbapi_connection, sqlite_busy_timeout_ms, file=path is not None)

        return engine
    return create_async_engine(
        async_url,
        pool_pre_ping=pre_ping,
        pool_size=2,
        max_overflow=2,
        pool_timeout=connect_timeout_s,
        connect_args={
            "timeout": connect_timeout_s,
            **({"server_settings": {"default_transaction_read_only": "on"}} if read_only else {}),
        },
    )


_MIGRATION_LOCKS: dict[str, threading.Lock] = {}
_MIGRATION_LOCKS_GUARD = threading.Lock()
# Alembic's context is module-global: two different databases migrating at once in one process collide (several
# clients with their own stores). The loop running a migration owns the turn; a loop that stopped mid-migration
# loses it, so an abandoned migration cannot block every other store.
_ALEMBIC_OWNER: list[asyncio.AbstractEventLoop | None] = [None]
_HELD_LOCK_FILES: set[Any] = set()  # lock files of migrations running now (see _reset_locks_in_child)


def _reset_locks_in_child() -> None:
    """After ``fork()``: a migration running on the parent's loop thread at that moment holds locks the child
    inherits but no thread of the child will ever release. Give the child fresh locks, and point its copies of
    the lock-file descriptors at /dev/null, so the ``flock`` stays the parent's alone (and ends with it)."""
    global _MIGRATION_LOCKS, _MIGRATION_LOCKS_GUARD
    _MIGRATION_LOCKS = {}
    _MIGRATION_LOCKS_GUARD = threading.Lock()
    _ALEMBIC_OWNER[0] = None
    held = list(_HELD_LOCK_FILES)
    _HELD_LOCK_FILES.clear()
    if not held:
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for handle in held:
            FORK_ORPHANS.append(handle)
            with contextlib.suppress(OSError, ValueError):
                os.dup2(null, handle.fileno())  # not close(): the number stays taken, so no later double close
    finally:
        os.close(null)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_locks_in_child)


def preload(async_url: str) -> None:
    """Import, on the calling thread, the modules the loop thread would otherwise import in the background
    (Alembic, the dialect and its driver).

    A ``fork()`` while another thread is importing a module leaves the child a half-initialised module (an
    ``ImportError`` on every later use) or a module lock no thread of the child will ever release (a hang).
    Pre-fork servers fork right after start-up, exactly when the auto-migration would be importing these.
    """
    import alembic.command
    import alembic.config
    import alembic.context
    import alembic.op
    import alembic.runtime.migration
    import alembic.script  # noqa: F401
    from sqlalchemy.dialects import postgresql  # noqa: F401  (the migrations use its types)

    with contextlib.suppress(Exception):
        make_url(async_url).get_dialect().import_dbapi()


@contextlib.asynccontextmanager
async def _migration_lock(url: URL) -> AsyncIterator[None]:
    """Serialise migrations of one database across threads and loops, and across processes for a SQLite file.

    Polls instead of blocking, so two migrations started on the same event loop cannot deadlock it. (On
    PostgreSQL the migration environment also takes an advisory lock, which covers every process.)
    """
    # Per database, not per process: a migration abandoned on a stopped loop keeps its lock forever, and must not
    # block every other store of the process. (Alembic's context is module-global, so two *different* databases
    # migrating at the same instant are serialised by _ALEMBIC_LOCK in ``upgrade``.)
    key = url.render_as_string(hide_password=True)
    with _MIGRATION_LOCKS_GUARD:
        lock = _MIGRATION_LOCKS.setdefault(key, threading.Lock())
    while not lock.acquire(blocking=False):
        await asyncio.sleep(0.01)
    handle = None
    try:
        database = url.database
        if url.get_backend_name() == "sqlite" and database and database != ":memory:" and fcntl is not None:
            try:
                handle = open(f"{database}.leanllm-migrate.lock", "a+")  # noqa: SIM115 - held until finally
            except OSError:
                handle = None  # e.g. read-only directory: the migration fails on its own with a clear error
            if handle is not None:
                _HELD_LOCK_FILES.add(handle)
            while handle is not None:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.01)
        yield
    finally:
        if handle is not None:
            _HELD_LOCK_FILES.discard(handle)
            handle.close()
        lock.release()


def _upgrade_sync(connection: Connection, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(engine: AsyncEngine | AsyncConnection, revision: str = "head") -> None:
    """Run the package's Alembic migrations up to ``revision`` on ``engine`` (idempotent, serialised)."""
    async with _migration_lock(engine.engine.url if isinstance(engine, AsyncConnection) else engine.url):
        loop = asyncio.get_running_loop()
        while True:
            with _MIGRATION_LOCKS_GUARD:
                owner = _ALEMBIC_OWNER[0]
                if owner is None or owner.is_closed() or not owner.is_running():
                    _ALEMBIC_OWNER[0] = loop
                    break
            await asyncio.sleep(0.01)
        try:
            if isinstance(engine, AsyncConnection):
                await engine.run_sync(_upgrade_sync, revision)
                return
            async with engine.begin() as connection:
                await connection.run_sync(_upgrade_sync, revision)
        finally:
            with _MIGRATION_LOCKS_GUARD:
                if _ALEMBIC_OWNER[0] is loop:
                    _ALEMBIC_OWNER[0] = None


def _current_sync(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The schema revision recorded in the database (None when it was never migrated)."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current_sync)


def head_revision() -> str:
    """The newest revision shipped with the package."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


class Database:
    """One database used from synchronous code: a :class:`LoopThread` plus an engine created on that loop."""

    def __init__(
        self,
        database_url: str,
        *,
        name: str = "leanllm-sql",
        sqlite_busy_timeout_ms: int = 5000,
        connect_timeout_s: float = 10.0,
        pre_ping: bool = True,
    ) -> None:
        self.async_url = async_database_url(database_url)
        self._pre_ping = pre_ping
        self.masked_url = mask_url(database_url)
        self._busy_ms = sqlite_busy_timeout_ms
        self._connect_timeout_s = connect_timeout_s
        self._runner = LoopThread(name)
        self._engine: AsyncEngine | None = None
        self._pid = os.getpid()
        if hasattr(os, "register_at_fork"):
            weak = weakref.WeakMethod(self._after_fork)

            def _after_fork_in_child() -> None:
                method = weak()
                if method is not None:
                    method()

            os.register_at_fork(after_in_child=_after_fork_in_child)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.async_url)

    def _after_fork(self) -> None:
        if self._engine is not None:
            FORK_ORPHANS.append(self._engine)
        self._engine = None
        self._runner.forget()
        self._pid = os.getpid()

    async def engine(self) -> AsyncEngine:
        """The engine (created on first use, on the loop thread)."""
        if self._engine is None:
            self._engine = create_engine(
                self.async_url,
                sqlite_busy_timeout_ms=self._busy_ms,
                connect_timeout_s=self._connect_timeout_s,
                pre_ping=self._pre_ping,
            )
        return self._engine

    def run(self, operation: Callable[[AsyncEngine], Awaitable[T]], timeout: float | None) -> T:
        """Run ``operation(engine)`` on the loop thread and wait at most ``timeout`` seconds."""
        if self._pid != os.getpid():  # fork without register_at_fork support
            self._after_fork()

        async def _call() -> T:
            return await operation(await self.engine())

        return self._runner.run(_call(), timeout)

    def submit(self, operation: Callable[[AsyncEngine], Awaitable[T]]) -> concurrent.futures.Future[T]:
        """Start ``operation(engine)`` on the loop thread without waiting for it."""
        if self._pid != os.getpid():
            self._after_fork()

        async def _call() -> T:
            return await operation(await self.engine())

        return asyncio.run_coroutine_threadsafe(_call(), self._runner.loop)

    def close(self, timeout: float = 5.0) -> None:
        """Dispose the engine and stop the loop thread (bounded by ``timeout``)."""
        if self._engine is not None:
            engine, self._engine = self._engine, None
            with contextlib.suppress(Exception):
                self._runner.run(engine.dispose(), timeout)
        self._runner.stop(timeout)
