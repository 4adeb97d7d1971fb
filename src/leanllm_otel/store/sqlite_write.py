"""SQLite's write of event rows: the standard library's driver on the exporting thread, one statement per batch.

Through the async engine a batch crossed threads about eight times (export thread -> the store's loop thread ->
aiosqlite's thread, and back, for BEGIN, the insert and COMMIT). Each crossing takes the GIL again, and while the
application keeps the GIL busy every one of them can wait out the interpreter's switch interval (findings 17 and 20
of ``benchmarks/README.md``). Here the exporting thread binds the parameters and runs the statement itself: the GIL is
released for SQLite's own work once per statement, and taken back once. A batch written as one statement (a
power-of-two number of rows, see ``store.insert.statement_sizes``) is that statement alone, which SQLite runs as its
own transaction; a batch of several statements is wrapped in ``BEGIN IMMEDIATE`` / ``COMMIT``, atomic as well.

The busy timeout (another process or connection holding the file's write lock) is waited out here, in slices of
50 ms, rather than inside SQLite, whose busy handler ``interrupt()`` cannot end: a store being shut down stops waiting
within a slice. One connection per store and process, used by one writer at a time (SQLite admits one writer anyway).
After an
``OperationalError`` (locked past the busy timeout, read-only file, full disk) the connection is closed, so the next
attempt opens a fresh one: SQLite keeps a connection read-only once it saw a read-only file. :meth:`SqliteWrite.close`
interrupts a write still running (``sqlite3.Connection.interrupt``: SQLite rolls the statement back), so a store being
shut down stops at once and what it held is counted as dropped. After ``fork()`` the child opens its own connection.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from leanllm_otel.delivery_errors import RetryableError
from leanllm_otel.store.loop import FORK_ORPHANS

__all__ = ["SqliteWrite", "apply_pragmas"]

_BUSY_SLICE_MS = 50
_BUSY_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # extended code (Python 3.11+): its low byte is the primary one
    return (isinstance(code, int) and (code & 0xFF) in _BUSY_CODES) or "locked" in str(exc)


def apply_pragmas(connection: Any, busy_timeout_ms: int, *, file: bool) -> None:
    """The settings every store connection to SQLite gets (DB-API connection): the busy timeout, and for a file WAL
    journaling with ``synchronous=NORMAL`` (readers beside the writer; durable at checkpoints)."""
    cursor = connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        if file:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


class SqliteWrite:
    """Writes ``(sql, parameters)`` statements into the SQLite file ``path`` in one transaction, on the calling thread.

    ``timeout_s`` bounds the wait for another writer of this process; the busy timeout bounds the wait for the
    file's lock. Raises the driver's exceptions (``sqlite3.Error``; ``OverflowError`` / ``UnicodeEncodeError`` for a
    value it cannot bind), or ``RetryableError`` when the turn did not come in time or the writer is closed.
    """

    def __init__(self, path: str, *, busy_timeout_ms: int, timeout_s: float) -> None:
        self._path = path
        self._busy_ms = busy_timeout_ms
        self._timeout_s = timeout_s
        self._turn = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._closed = False
        self._pid = os.getpid()

    def _after_fork(self) -> None:
        """In a forked child: the parent's connection is not ours to use or close, and its turn may have been taken
        by a parent thread that does not exist here."""
        if self._pid != os.getpid():
            if self._connection is not None:
                FORK_ORPHANS.append(self._connection)
            self._connection, self._pid = None, os.getpid()
            self._turn = threading.Lock()

    def _connected(self) -> sqlite3.Connection:
        if self._connection is None:
            slice_ms = min(self._busy_ms, _BUSY_SLICE_MS)
            connection = sqlite3.connect(
                self._path, timeout=slice_ms / 1000.0, isolation_level=None, check_same_thread=False
            )
            try:
                apply_pragmas(connection, slice_ms, file=True)
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._connection

    def write(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Run ``statements`` as one transaction (a single statement is its own)."""
        self._after_fork()
        if not self._turn.acquire(timeout=self._timeout_s):
            raise RetryableError("timeout")
        try:
            if self._closed:
                raise RetryableError("store closed")
            connection = self._connected()
            try:
                if len(statements) == 1:
                    self._when_unlocked(lambda: connection.execute(*statements[0]))
                else:
                    self._when_unlocked(lambda: connection.execute("BEGIN IMMEDIATE"))
                    try:
                        for sql, parameters in statements:
                            connection.execute(sql, parameters)
                    except BaseException:
                        if connection.in_transaction:
                            with contextlib.suppress(sqlite3.Error):  # the statement's own error is the one to raise
                                connection.execute("ROLLBACK")
                        raise
                    connection.execute("COMMIT")
            except sqlite3.OperationalError:
                self._drop_connection()
                raise
        finally:
            self._turn.release()

    def _when_unlocked(self, statement: Callable[[], object]) -> None:
        """Run ``statement`` (which takes the write lock and fails whole when it cannot), retrying while the file is
        locked, for at most the busy timeout, and not after :meth:`close`."""
        deadline = time.monotonic() + self._busy_ms / 1000.0
        while True:
            try:
                statement()
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or self._closed or time.monotonic() >= deadline:
                    raise

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(sqlite3.Error):
                connection.close()

    def release(self) -> None:
        """Close the connection when no write is running (the next write opens a new one)."""
        self._after_fork()
        if self._turn.acquire(timeout=self._timeout_s):
            try:
                self._drop_connection()
            finally:
                self._turn.release()

    def close(self, timeout_s: float) -> None:
        """Refuse further writes, interrupt the one running (its statement is rolled back), close the connection."""
        self._closed = True
        self._after_fork()
        connection = self._connection
        if connection is not None:
            connection.interrupt()
        if self._turn.acquire(timeout=timeout_s):
            try:
                self._drop_connection()
            finally:
                self._turn.release()
