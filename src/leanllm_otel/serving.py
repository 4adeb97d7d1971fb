"""An ASGI app on uvicorn, in a background thread (tests, embedding) or in the foreground (the CLI).

The base of the ingest service (``leanllm-otel serve``) and the viewer (``leanllm-otel ui``): a subclass builds its
app in :meth:`BackgroundServer.build_app` and frees what it holds in :meth:`BackgroundServer.release`. Needs the
``serve`` extra (uvicorn).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Literal, TypeVar

import uvicorn

__all__ = ["BackgroundServer"]

_logger = logging.getLogger(__name__)
S = TypeVar("S", bound="BackgroundServer")


class _Server(uvicorn.Server):
    """uvicorn's server, stopping on SIGINT/SIGTERM without re-raising the signal afterwards.

    uvicorn re-raises the captured signal once it has shut down, which kills the process before the server's
    resources are closed; the server closes them and exits 0 instead.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class BackgroundServer:
    """Serves :meth:`build_app` on ``host:port`` (``port=0`` picks a free port; read ``.port`` / ``.url``)."""

    thread_name = "leanllm-server"
    title = "server"

    def __init__(
        self, host: str, port: int, *, log_level: str = "warning", lifespan: Literal["on", "off"] = "off"
    ) -> None:
        self.host = host
        self.port = port
        self._log_level = log_level
        self._lifespan = lifespan
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._failure: BaseException | None = None

    # --- for subclasses ------------------------------------------------------------------------------------

    def build_app(self) -> Any:
        """The ASGI app to serve (called once per start; may raise to refuse to start)."""
        raise NotImplementedError

    def release(self) -> None:
        """Free what :meth:`build_app` acquired (called after serving, and when starting failed)."""

    def uvicorn_options(self) -> dict[str, Any]:
        """Extra ``uvicorn.Config`` settings (connection limits, timeouts) for this server."""
        return {}

    # --- lifecycle -----------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _prepare(self) -> _Server:
        app = self.build_app()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            self.release()
            raise
        self.port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(
            app,
            log_level=self._log_level,
            access_log=False,
            lifespan=self._lifespan,
            server_header=False,
            timeout_graceful_shutdown=5,
            **self.uvicorn_options(),
        )
        self._server = _Server(config)
        return self._server

    def start(self: S, timeout_s: float = 15.0) -> S:
        """Serve in a daemon thread; returns ``self`` once the server accepts connections."""
        if self.running:
            return self
        server = self._prepare()
        sock = self._socket
        assert sock is not None

        def _run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # surfaced by start() / logged
                self._failure = exc
                _logger.exception("%s stopped with an error", self.title)

        self._thread = threading.Thread(target=_run, name=self.thread_name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.title} did not start on {self.url}: {self._failure!r}")
            time.sleep(0.01)
        _logger.info("leanllm-otel %s listening on %s", self.title, self.url)
        return self

    def serve_forever(self) -> None:
        """Serve in the calling (main) thread until SIGINT/SIGTERM, then release."""
        server = self._prepare()
        assert self._socket is not None
        try:
            _logger.warning("leanllm-otel %s listening on %s", self.title, self.url)
            server.run(sockets=[self._socket])
        finally:
            self._close_socket()
            self.release()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop accepting, finish in-flight requests (bounded), release."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(2.0)
            self._thread = None
        self._close_socket()
        self.release()

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
