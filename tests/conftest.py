"""Shared fixtures: real loopback components (OpenAI-compatible server, OTLP receiver, PostgreSQL, SQLite).

Driving the mock OpenAI server through LiteLLM::

    litellm.completion(model="openai/err-429", api_base=openai_server.base_url, api_key="sk-test",
                       messages=[...], max_retries=0)

(the directives in the model name are listed in ``support/openai_server.py``; pass ``max_retries=0`` when a
test wants exactly one HTTP request for a 429/5xx: the OpenAI SDK retries those twice by default).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

# Before anything imports litellm: no network fetch of the cost map, quiet logs.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("LITELLM_LOG", "ERROR")

# `support` must import however pytest is started (`python -m pytest`, `pytest`, one file, tests/__init__.py).
_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

import pytest  # noqa: E402

from support import LeanLLMServiceServer, OpenAIServer, OTLPReceiver, PostgresServer  # noqa: E402


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A fresh OpenAI-compatible server per test (``.base_url``, ``.requests``)."""
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def otlp_receiver() -> Iterator[OTLPReceiver]:
    """A fresh OTLP/HTTP receiver per test (``.traces_endpoint``, ``.spans``, ``.raw_bodies``)."""
    with OTLPReceiver() as receiver:
        yield receiver


@pytest.fixture
def leanllm_service() -> Iterator[LeanLLMServiceServer]:
    """A fresh fake LeanLLM service per test, expecting ``Authorization: Bearer lllm_test``."""
    with LeanLLMServiceServer(api_key="lllm_test") as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole session.

    Fails (never skips) when the PostgreSQL binaries are missing: ``.ci/run`` installs them.
    """
    try:
        server = PostgresServer()
        server.start()
    except Exception as exc:
        pytest.fail(f"could not start the test PostgreSQL server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a fresh, empty database on the session server: ``postgresql://postgres@127.0.0.1:PORT/t_<hex>``.

    A test may stop the server; it is started again (same port and data) before the database is dropped.
    """
    if not postgres_server.running:
        postgres_server.start()
    url = postgres_server.create_database()
    yield url
    if not postgres_server.running:
        postgres_server.start()
    postgres_server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """``sqlite:///<tmp>/events.db`` in the test's own temporary directory (the file does not exist yet)."""
    return f"sqlite:///{tmp_path / 'events.db'}"


# ============================================================================================================
# Instrumentation fixtures
# (owned by the lead: span exporters, tracer providers, instrumentor setup/teardown go below this line)
# ============================================================================================================
