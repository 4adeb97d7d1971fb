"""uvicorn's HTTP/1.1 protocol with the two limits it lacks: a deadline for a request's headers, and a cap on open
connections below the process's file-descriptor limit.

uvicorn times out idle keep-alive connections (``timeout_keep_alive``) but not a connection that never finishes
its first request head, and it accepts connections until ``accept()`` fails with ``EMFILE``: a few hundred idle
sockets then lock every other client out. Here a connection that has not sent a complete request head within
``header_timeout_s`` (after connecting, or after its previous response) is closed, and when ``max_connections``
are open, a new one makes room by closing the oldest connection still waiting for a request head (or, when every
connection is busy with a request, is closed itself). Requests in progress are never cut.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["DEFAULT_HEADER_TIMEOUT_S", "default_max_connections", "guarded_protocol"]

DEFAULT_HEADER_TIMEOUT_S = 10.0
_RESERVED_DESCRIPTORS = 64  # the store's files and pool, the listening socket, threads, logs, stdio
_MAX_CONNECTIONS_CEILING = 4096


def default_max_connections() -> int:
    """Open connections allowed: the descriptor limit (``RLIMIT_NOFILE``) minus a reserve, at most 4096."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return _MAX_CONNECTIONS_CEILING
    return max(4, min(_MAX_CONNECTIONS_CEILING, soft - _RESERVED_DESCRIPTORS))


class _GuardedH11Protocol(H11Protocol):
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    max_connections: int = _MAX_CONNECTIONS_CEILING

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting = False
        self._opened = self.loop.time()
        self._await_head()
        if len(self.connections) > self.max_connections:
            self._make_room()

    def _await_head(self) -> None:
        self._waiting = True
        self._cancel_deadline()
        self._deadline = self.loop.call_later(self.header_timeout_s, self._head_too_slow)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_too_slow(self) -> None:
        self._deadline = None
        if self._waiting:
            self._close()

    def _close(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def _make_room(self) -> None:
        waiting = [
            conn
            for conn in self.connections
            if isinstance(conn, _GuardedH11Protocol) and conn is not self and conn._waiting
        ]
        if waiting:
            min(waiting, key=lambda conn: conn._opened)._close()
        else:
            self._close()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request head arrived: it is served, however long it takes
            self._waiting = False
            self._cancel_deadline()

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            self._await_head()  # before super(): it may start a pipelined request at once
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._waiting = False
        self._cancel_deadline()
        super().connection_lost(exc)


def guarded_protocol(header_timeout_s: float, max_connections: int) -> type[Any]:
    """The protocol class for ``uvicorn.Config(http=...)`` with these limits."""
    return type(
        "GuardedH11Protocol",
        (_GuardedH11Protocol,),
        {"header_timeout_s": float(header_timeout_s), "max_connections": max(1, int(max_connections))},
    )
