"""``UIServer``: the viewer on uvicorn, in a background thread (tests) or in the foreground (``leanllm-otel ui``)."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr
from starlette.applications import Starlette

from leanllm_otel.config import LeanLLMConfig, mask_url
from leanllm_otel.feedback import ScoreRecorder
from leanllm_otel.serving import BackgroundServer
from leanllm_otel.store.engine import LoopThread
from leanllm_otel.store.queries import AsyncEventStore
from leanllm_otel.ui.app import create_app
from leanllm_otel.ui.queries import ViewerQueries
from leanllm_otel.ui.security import Guard, check_bind

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "UIServer"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4320


def _check_store(database_url: str, timeout_s: float = 15.0) -> None:
    """Fail at start (StoreError, one line) when the store cannot be read: no file, no schema, unreachable."""

    async def count() -> int:
        store = AsyncEventStore(database_url, read_only=True)
        try:
            return await store.count_events()
        finally:
            await store.close()

    runner = LoopThread("leanllm-ui-check")
    try:
        runner.run(count(), timeout_s)
    finally:
        runner.stop()


class UIServer(BackgroundServer):
    """The read-only viewer over ``database_url`` on ``host:port`` (``port=0`` picks a free one).

    A non-loopback ``host`` needs a ``token`` (ValueError otherwise). ``config`` supplies the redaction mode for
    score comments (default: the ``LEANLLM_*`` environment). ``emitter``: where scores' evaluation events go
    (default: found from the environment, see ``leanllm_otel.evaluation``).
    """

    thread_name = "leanllm-ui"
    title = "viewer"

    def __init__(
        self,
        database_url: str,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        token: str | None = None,
        *,
        log_level: str = "warning",
        config: LeanLLMConfig | None = None,
        emitter: Any = None,
    ) -> None:
        check_bind(host, token)
        super().__init__(host, port, log_level=log_level, lifespan="on")
        self._database_url = SecretStr(database_url)
        self._token = SecretStr(token) if token else None
        base = config if config is not None else LeanLLMConfig.from_env()
        # The viewer never changes the schema: no auto-migration behind the score form.
        self._config = base.replace(database_url=database_url, auto_migrate=False, leanllm_api_key=None)
        self._emitter = emitter
        self._recorder: ScoreRecorder | None = None

    @property
    def masked_url(self) -> str:
        return mask_url(self._database_url.get_secret_value())

    def __repr__(self) -> str:
        return f"UIServer(url={self.url!r}, store={self.masked_url!r}, auth={'on' if self._token else 'off'})"

    def build_app(self) -> Starlette:
        url = self._database_url.get_secret_value()
        _check_store(url)
        kwargs = {} if self._emitter is None else {"emitter": self._emitter}
        self._recorder = ScoreRecorder(self._config, **kwargs)
        guard = Guard(self._token.get_secret_value() if self._token else None)
        return create_app(ViewerQueries(url), self._recorder, guard, self.masked_url)

    def release(self) -> None:
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            recorder.flush(2000)
            recorder.close()
