"""``IngestServer``: the ingest app on uvicorn, in a background thread (tests, embedding) or in the foreground.

::

    with IngestServer("sqlite:///events.db", port=0, token="s3cret") as server:
        exporter = LeanLLMServiceExporter(endpoint=server.url, api_key="s3cret")
        ...
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import SecretStr
from starlette.applications import Starlette

from leanllm_otel.ingest.app import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONCURRENT_REQUESTS,
    EventSink,
    create_app,
)
from leanllm_otel.ingest.connections import DEFAULT_HEADER_TIMEOUT_S, default_max_connections, guarded_protocol
from leanllm_otel.ingest.sink import SQLEventSink
from leanllm_otel.serving import BackgroundServer

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "IngestServer", "build_app"]

_logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4319  # next to OTLP/HTTP's 4318


build_app = create_app
"""The ingest ASGI app over a sink (mount it in any ASGI server): :func:`leanllm_otel.ingest.app.create_app`."""


class IngestServer(BackgroundServer):
    """The ingest service on ``host:port`` (``port=0`` picks a free port; read ``.port`` / ``.url`` after start).

    ``token`` None disables authentication. The database schema is migrated at :meth:`start`, which raises when
    the database cannot be reached or the port cannot be bound.

    Limits: a connection must send a complete request head within ``header_timeout_s`` (and an idle keep-alive
    connection is closed after ``keep_alive_s``); at most ``max_connections`` are open at once (default: the
    descriptor limit minus a reserve; the oldest connection still waiting for a request head makes room for a new
    one); at most ``max_concurrent_requests`` are served at once (503 beyond); a body must arrive within
    ``body_timeout_s`` (408).
    """

    thread_name = "leanllm-ingest"
    title = "ingest service"

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
        super().__init__(host, port, log_level=log_level)
        self._database_url = SecretStr(database_url)  # may hold a password
        self._token = SecretStr(token) if token else None
        self._max_body_bytes = max_body_bytes
        self._sink_override = sink
        self._header_timeout_s = header_timeout_s
        self._keep_alive_s = keep_alive_s
        self._max_connections = max_connections if max_connections is not None else default_max_connections()
        self._max_concurrent_requests = max_concurrent_requests
        self._body_timeout_s = body_timeout_s
        self._sink: EventSink | None = None

    def __repr__(self) -> str:
        return f"IngestServer(url={self.url!r}, auth={'on' if self._token else 'off'})"

    def build_app(self) -> Starlette:
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
        return build_app(
            sink,
            token=self._token.get_secret_value() if self._token else None,
            max_body_bytes=self._max_body_bytes,
            max_concurrent_requests=self._max_concurrent_requests,
            body_timeout_s=self._body_timeout_s,
        )

    def uvicorn_options(self) -> dict[str, Any]:
        return {
            "http": guarded_protocol(self._header_timeout_s, self._max_connections),
            "timeout_keep_alive": self._keep_alive_s,
        }

    def release(self) -> None:
        sink, self._sink = self._sink, None
        if isinstance(sink, SQLEventSink) and sink is not self._sink_override:  # a caller's sink is theirs
            sink.close()
