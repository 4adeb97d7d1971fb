"""``IngestServer``: the ingest app on uvicorn, in a background thread (tests, embedding) or in the foreground.

::

    with IngestServer("sqlite:///events.db", port=0, token="s3cret") as server:
        exporter = LeanLLMServiceExporter(endpoint=server.url, api_key="s3cret")
        ...
"""

from __future__ import annotations

import logging

from pydantic import SecretStr
from starlette.applications import Starlette

from leanllm_otel.ingest.app import DEFAULT_MAX_BODY_BYTES, EventSink, create_app
from leanllm_otel.ingest.sink import SQLEventSink
from leanllm_otel.serving import BackgroundServer

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "IngestServer", "build_app"]

_logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4319  # next to OTLP/HTTP's 4318


def build_app(sink: EventSink, *, token: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Starlette:
    """The ingest ASGI app over ``sink`` (mount it in any ASGI server)."""
    return create_app(sink, token=token, max_body_bytes=max_body_bytes)


class IngestServer(BackgroundServer):
    """The ingest service on ``host:port`` (``port=0`` picks a free port; read ``.port`` / ``.url`` after start).

    ``token`` None disables authentication. The database schema is migrated at :meth:`start`, which raises when
    the database cannot be reached or the port cannot be bound.
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
    ) -> None:
        super().__init__(host, port, log_level=log_level)
        self._database_url = SecretStr(database_url)  # may hold a password
        self._token = SecretStr(token) if token else None
        self._max_body_bytes = max_body_bytes
        self._sink_override = sink
        self._sink: EventSink | None = None

    def __repr__(self) -> str:
        return f"IngestServer(url={self.url!r}, auth={'on' if self._token else 'off'})"

    def build_app(self) -> Starlette:
        if self._sink_override is not None:
            self._sink = self._sink_override
        else:
            sql_sink = SQLEventSink(self._database_url.get_secret_value())
            try:
                sql_sink.migrate(timeout_s=30.0)
            except BaseException:
                sql_sink.close()
                raise
            self._sink = sql_sink
        return build_app(
            self._sink,
            token=self._token.get_secret_value() if self._token else None,
            max_body_bytes=self._max_body_bytes,
        )

    def release(self) -> None:
        sink, self._sink = self._sink, None
        if isinstance(sink, SQLEventSink) and sink is not self._sink_override:  # a caller's sink is theirs
            sink.close()
