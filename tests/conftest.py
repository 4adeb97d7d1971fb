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
# `loopback` (the servers, shared with benchmarks/) sits at the repository root.
_TESTS_DIR = str(Path(__file__).resolve().parent)
_ROOT_DIR = str(Path(__file__).resolve().parent.parent)
for _path in (_ROOT_DIR, _TESTS_DIR):
    if _path not in sys.path:
        sys.path.insert(0, _path)

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

from collections.abc import Callable  # noqa: E402

import litellm  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.sdk.trace.sampling import Sampler  # noqa: E402

from leanllm_otel import semconv as _sc  # noqa: E402
from leanllm_otel.instrumentation.instrumentor import LeanLLMInstrumentor  # noqa: E402
from leanllm_otel.processing.processor import LeanLLMSpanProcessor  # noqa: E402
from leanllm_otel.settings import TelemetrySettings  # noqa: E402


class Instrumented:
    """LiteLLM instrumented onto private providers; spans land in ``exporter`` after ``processor``'s decisions.

    ``all_spans`` also sees what the processor dropped (a plain ``SimpleSpanProcessor`` on the provider).
    """

    def __init__(self, settings: TelemetrySettings, sampler: Sampler | None = None) -> None:
        self.settings = settings
        self.exporter = InMemorySpanExporter()
        self.unfiltered = InMemorySpanExporter()
        self.processor = LeanLLMSpanProcessor(settings)
        self.processor.add_span_processor(SimpleSpanProcessor(self.processor.wrap_exporter(self.exporter)))
        self.provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
        self.provider.add_span_processor(self.processor)
        self.provider.add_span_processor(SimpleSpanProcessor(self.unfiltered))
        self.metrics_reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metrics_reader])
        self.instrumentor = LeanLLMInstrumentor()
        self.instrumentor.instrument(
            tracer_provider=self.provider, meter_provider=self.meter_provider, settings=settings
        )
        self.tracer = self.provider.get_tracer("tests")

    # --- spans ---------------------------------------------------------------------------------------------
    def spans(self) -> list[ReadableSpan]:
        """Every span the exporter received (after sampling and rendering)."""
        return list(self.exporter.get_finished_spans())

    def llm_spans(self) -> list[ReadableSpan]:
        """The exported LLM spans (those carrying a LeanLLM event id)."""
        return [s for s in self.spans() if _sc.LEANLLM_REQUEST_ID in (s.attributes or {})]

    def all_llm_spans(self) -> list[ReadableSpan]:
        """Every LLM span that ended, kept or not."""
        return [
            s for s in self.unfiltered.get_finished_spans() if _sc.LEANLLM_REQUEST_ID in (s.attributes or {})
        ]

    def one_llm_span(self) -> ReadableSpan:
        spans = self.llm_spans()
        assert len(spans) == 1, [(s.name, dict(s.attributes or {})) for s in spans]
        return spans[0]

    def clear(self) -> None:
        self.exporter.clear()
        self.unfiltered.clear()

    # --- metrics -------------------------------------------------------------------------------------------
    def metric_points(self, name: str) -> list[object]:
        """Data points of metric ``name`` collected now (histogram points have ``count``, ``sum``, ``attributes``)."""
        data = self.metrics_reader.get_metrics_data()
        points: list[object] = []
        if data is None:
            return points
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        points.extend(metric.data.data_points)
        return points

    def close(self) -> None:
        self.instrumentor.uninstrument()
        self.provider.shutdown()
        self.meter_provider.shutdown()


_LITELLM_CALLBACK_LISTS = (
    "callbacks",
    "input_callback",
    "success_callback",
    "failure_callback",
    "_async_success_callback",
    "_async_failure_callback",
)


@pytest.fixture
def make_instrumented() -> Iterator[Callable[..., Instrumented]]:
    """Factory: ``make_instrumented(sampler=None, **TelemetrySettings fields)``; uninstruments at teardown.

    The patching is global, so only one instrumented setup is live at a time: making a second one closes the first.
    """
    made: list[Instrumented] = []
    # LiteLLM copies ``litellm.callbacks`` into its other lists (deduplicated by class) on the first call.
    saved_callbacks = {name: list(getattr(litellm, name)) for name in _LITELLM_CALLBACK_LISTS}

    def make(sampler: Sampler | None = None, **settings: object) -> Instrumented:
        while made:
            made.pop().close()
        inst = Instrumented(TelemetrySettings(**settings), sampler)  # type: ignore[arg-type]
        made.append(inst)
        return inst

    try:
        yield make
    finally:
        while made:
            made.pop().close()
        for name, value in saved_callbacks.items():
            setattr(litellm, name, value)


@pytest.fixture
def instrumented(request: pytest.FixtureRequest, make_instrumented: Callable[..., Instrumented]) -> Instrumented:
    """Instrumented with default settings, or ``TelemetrySettings(**request.param)`` when parametrized indirectly."""
    params = getattr(request, "param", None) or {}
    return make_instrumented(**params)
