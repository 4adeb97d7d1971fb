"""``IngestServer``: the ingest app on uvicorn, in a background thread (tests, embedding) or in the foreground.

::

    with IngestServer("sqlite:///events.db", port=0, token="s3cret") as server:
        exporter = LeanLLMServiceExporter(endpoint=server.url, api_key="s3cret")
        ...
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

import uvicorn
from pydantic import SecretStr

from leanllm_otel.ingest.app import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONCURRENT_REQUESTS,
    EventSink,
    create_app,
)
from leanllm_otel.ingest.connections import DEFAULT_HEADER_TIMEOUT_S, default_max_connections, guarded_protocol
from leanllm_otel.ingest.sink import SQLEventSink

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "IngestServer", "build_app"]

_logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4319  # next to OTLP/HTTP's 4318


build_app = create_app
"""The ingest ASGI app over a sink (mount it in any ASGI server): :func:`leanllm_otel.ingest.app.create_app`."""


class _Server(uvicorn.Server):
    """uvicorn's server, stopping on SIGINT/SIGTERM without re-raising the signal afterwards.

    uvicorn re-raises the captured signal once it has shut down, which kills the process before the store is
    closed; the service closes its store and exits 0 instead.
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


class IngestServer:
    """The ingest service on ``host:port`` (``port=0`` picks a free port; read ``.port`` / ``.url`` after start).

    ``token`` None disables authentication. The database schema is migrated at :meth:`start`, which raises when
    the database cannot be reached or the port cannot be bound.

    Limits: a connection must send a complete request head within ``header_timeout_s`` (and an idle keep-alive
    connection is closed after ``keep_alive_s``); at most ``max_connections`` are open at once (default: the
    descriptor limit minus a reserve; the oldest connection still waiting for a request head makes room for a new
    one); at most ``max_concurrent_requests`` are served at once (503 beyond); a body must arrive within
    ``body_timeout_s`` (408).
    """

    def __init__(
        self,
        database_url: str,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        token: str | None = None,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        log_level: str = "warning",
        sink: EventSink | None = None,
        header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
        keep_alive_s: int = 5,
        max_connections: int | None = None,
        max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS,
        body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
    ) -> None:
        self._database_url = SecretStr(database_url)  # may hold a password
        self.host = host
        self.port = port
        self._token = SecretStr(token) if token else None
        self._max_body_bytes = max_body_bytes
        self._log_level = log_level
        self._sink_override = sink
        self._header_timeout_s = header_timeout_s
        self._keep_alive_s = keep_alive_s
        self._max_connections = max_connections if max_connections is not None else default_max_connections()
        self._max_concurrent_requests = max_concurrent_requests
        self._body_timeout_s = body_timeout_s
        self._sink: EventSink | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._failure: BaseException | None = None

    def __repr__(self) -> str:
        return f"IngestServer(url={self.url!r}, auth={'on' if self._token else 'off'})"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- lifecycle -----------------------------------------------------------------------------------------

    def _prepare(self) -> _Server:
        sink: EventSink
        if self._sink_override is not None:
            sink = self._sink_override
        else:
            sql_sink = SQLEventSink(self._database_url.get_secret_value())
            try:
                sql_sink.migrate(timeout_s=30.0)
            except BaseException:
                sql_sink.close()
                raise
            sink = sql_sink
        self._sink = sink
        app = build_app(
            sink,
            token=self._token.get_secret_value() if self._token else None,
            max_body_bytes=self._max_body_bytes,
            max_concurrent_requests=self._max_concurrent_requests,
            body_timeout_s=self._body_timeout_s,
        )
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            self._close_sink()
            raise
        self.port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(
            app,
            http=guarded_protocol(self._header_timeout_s, self._max_connections),
            log_level=self._log_level,
            access_log=False,
            lifespan="off",
            server_header=False,
            timeout_keep_alive=self._keep_alive_s,
            timeout_graceful_shutdown=5,
        )
        self._server = _Server(config)
        return self._server

    def start(self, timeout_s: float = 15.0) -> IngestServer:
        """Serve in a daemon thread; returns once the server accepts connections."""
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
                _logger.exception("ingest server stopped with an error")

        self._thread = threading.Thread(target=_run, name="leanllm-ingest", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ingest server did not start on {self.url}: {self._failure!r}")
            time.sleep(0.01)
        _logger.info("leanllm-otel ingest service listening on %s", self.url)
        return self

    def serve_forever(self) -> None:
        """Serve in the calling (main) thread until SIGINT/SIGTERM, then close the store."""
        server = self._prepare()
        assert self._socket is not None
        try:
            _logger.warning("leanllm-otel ingest service listening on %s", self.url)
            server.run(sockets=[self._socket])
        finally:
            self._close_socket()
            self._close_sink()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop accepting, finish in-flight requests (bounded), close the store."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(2.0)
            self._thread = None
        self._close_socket()
        self._close_sink()

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _close_sink(self) -> None:
        sink, self._sink = self._sink, None
        if isinstance(sink, SQLEventSink) and sink is not self._sink_override:  # a caller's sink is theirs
            sink.close()

    def __enter__(self) -> IngestServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
