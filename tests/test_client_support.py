"""Fixtures ``clean_env`` and ``make_client`` (import the ``*_fixture`` functions) and helpers for the client tests.

Every client made here is closed at teardown, and the test fails if LiteLLM is left instrumented.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import litellm
import pytest

import leanllm_otel
from leanllm_otel.client import LeanLLM
from leanllm_otel.config import ENV_VARS, LeanLLMConfig
from leanllm_otel.instrumentation.instrumentor import LeanLLMInstrumentor

MODEL = "openai/gpt-4o-mini"
USER = [{"role": "user", "content": "Say hi."}]


@pytest.fixture(name="clean_env")
def clean_env_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """No stray ``LEANLLM_*`` / OTLP variables reach ``LeanLLMConfig.from_env()``."""
    for variable in list(os.environ):
        ours = variable in ENV_VARS.values() or variable.startswith(("LEANLLM_", "OTEL_EXPORTER_OTLP", "OTEL_TRACES"))
        if ours and variable != "LEANLLM_INTERNAL_ERRORS":
            monkeypatch.delenv(variable, raising=False)


@pytest.fixture(name="make_client")
def make_client_fixture(clean_env: None, sqlite_url: str) -> Iterator[Callable[..., LeanLLM]]:
    """``make_client(hooks..., api_key=..., **LeanLLMConfig fields)``; SQLite store in tmp unless overridden.

    Pass ``config=`` to use a config as is. Teardown closes every client and checks LiteLLM is uninstrumented.
    """
    made: list[LeanLLM] = []
    saved_callbacks = list(litellm.callbacks)
    hook_names = ("pre_call_hook", "post_call_hook", "error_hook", "on_dropped_events")

    def make(**options: Any) -> LeanLLM:
        hooks = {name: options.pop(name) for name in hook_names if name in options}
        api_key = options.pop("api_key", "sk-test")
        config = options.pop("config", None)
        if config is None:
            options.setdefault("database_url", sqlite_url)
            config = LeanLLMConfig(**options)
        client = LeanLLM(api_key=api_key, config=config, **hooks)
        made.append(client)
        return client

    try:
        yield make
    finally:
        while made:
            made.pop().close()
        leanllm_otel.shutdown()
        litellm.callbacks[:] = saved_callbacks
        instrumentor = LeanLLMInstrumentor()
        left_instrumented = instrumentor.is_instrumented_by_opentelemetry
        if left_instrumented:
            instrumentor.uninstrument()
        assert not left_instrumented, "a test left LiteLLM instrumented"


def ask(client: LeanLLM, server: Any, text: str = "Say hi.", **kwargs: Any) -> Any:
    """One chat call against the loopback server."""
    return client.chat(MODEL, [{"role": "user", "content": text}], api_base=server.base_url, **kwargs)


async def aask(client: LeanLLM, server: Any, text: str = "Say hi.", **kwargs: Any) -> Any:
    return await client.achat(MODEL, [{"role": "user", "content": text}], api_base=server.base_url, **kwargs)
