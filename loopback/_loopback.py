"""Lifecycle shared by the loopback HTTP servers: free port, daemon thread, start/stop, context manager."""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, TypeVar

_Self = TypeVar("_Self", bound="LoopbackServer[Any]")
_Owner = TypeVar("_Owner")


class _HTTPServer(ThreadingHTTPServer, Generic[_Owner]):
    """``ThreadingHTTPServer`` on ``127.0.0.1:0`` that knows its owner and its open connections."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: _Owner, handler: type[BaseHTTPRequestHandler]) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut every open (keep-alive) connection, so a stopped server really stops answering."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 handler that does not log every request to stderr."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackServer(Generic[_Owner]):
    """Base for the test servers: serves ``handler_class`` on a free loopback port in a daemon thread."""

    handler_class: type[BaseHTTPRequestHandler]
    thread_name = "loopback-http"

    def __init__(self) -> None:
        self._httpd: _HTTPServer[Any] | None = None
        self._thread: threading.Thread | None = None

    def start(self: _Self) -> _Self:
        """Bind a free ``127.0.0.1`` port and serve in a daemon thread (idempotent)."""
        if self._httpd is None:
            self._httpd = _HTTPServer(self, self.handler_class)
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                daemon=True,
                name=f"{self.thread_name}-{self.port}",
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open connection (idempotent)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.close_connections()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._httpd = self._thread = None

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def __enter__(self: _Self) -> _Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no path)."""
        return f"http://127.0.0.1:{self.port}"
