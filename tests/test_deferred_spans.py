"""The deferred span path (``instrumentation/deferred.py``): when the pipeline is ours, the caller's thread makes
only a non-recording span context current and the SDK span is built later with the same ids. Its contract: same
span id as during the call (the parent of HTTP child spans), every processor on the provider still gets every kept
span, errors kept, sampled-out calls counted and never spans, one span per call, a stream ended once, content
redacted before any exporter; a pipeline that is not ours keeps the SDK span path."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import litellm
import openai
import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import leanllm_otel
from leanllm_otel import CallOptions, use_call_options
from leanllm_otel import semconv as sc
from leanllm_otel.instrumentation import deferred
from leanllm_otel.instrumentation.instrumentor import LeanLLMInstrumentor
from leanllm_otel.pipeline import Pipeline
from leanllm_otel.processing.processor import LeanLLMSpanProcessor
from leanllm_otel.processing.sampling import LeanLLMSampler
from leanllm_otel.settings import TelemetrySettings
from support import OpenAIServer

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("LEANLLM_", "OTEL_")):
            monkeypatch.delenv(name)


class Recording(SpanProcessor):
    """A processor the application attached straight to the provider: what it saw, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, int]] = []
        self.ended: list[ReadableSpan] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.events.append(("start", span.name, span.get_span_context().span_id))

    def on_end(self, span: ReadableSpan) -> None:
        assert span.context is not None
        self.events.append(("end", span.name, span.context.span_id))
        self.ended.append(span)


class Setup:
    def __init__(self, pipeline: Pipeline, exporter: InMemorySpanExporter, user: Recording) -> None:
        self.pipeline = pipeline
        self.exporter = exporter
        self.user = user

    def llm_spans(self) -> list[ReadableSpan]:
        assert self.pipeline.force_flush(10_000)
        return [s for s in self.exporter.get_finished_spans() if sc.LEANLLM_REQUEST_ID in (s.attributes or {})]


@pytest.fixture
def ours() -> Iterator[Any]:
    made: list[Pipeline] = []

    def make(**options: Any) -> Setup:
        provider = TracerProvider(sampler=LeanLLMSampler(leanllm_otel.pipeline.default_sampler()))
        user = Recording()
        provider.add_span_processor(user)
        exporter = InMemorySpanExporter()
        pipeline = leanllm_otel.configure(
            tracer_provider=provider, enable_persistence=False, exporters=[exporter], otlp=False, **options
        )
        made.append(pipeline)
        telemetry = LeanLLMInstrumentor().telemetry
        assert telemetry is not None and telemetry.deferral() is not None  # the deferred path is the one tested
        return Setup(pipeline, exporter, user)

    yield make
    for pipeline in made:
        pipeline.shutdown(5000)


def _complete(**kwargs: Any) -> Any:
    return litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="hello", **kwargs)


def test_span_id_is_the_one_current_during_the_call_and_parents_http_children(
    ours: Any, openai_server: OpenAIServer
) -> None:
    setup = ours()
    httpx_instrumentation = pytest.importorskip("opentelemetry.instrumentation.httpx")
    instrumentor = httpx_instrumentation.HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=setup.pipeline.provider)
    try:
        litellm.completion(
            model="openai/gpt-4o-mini", messages=MESSAGES, api_base=openai_server.base_url, api_key="sk-test"
        )
    finally:
        instrumentor.uninstrument()
    (llm,) = setup.llm_spans()
    http = [s for s in setup.user.ended if s.kind is SpanKind.CLIENT and s is not llm and s.name != llm.name]
    assert len(http) == 1
    assert llm.context is not None and http[0].parent is not None
    assert http[0].parent.span_id == llm.context.span_id
    assert http[0].context is not None and http[0].context.trace_id == llm.context.trace_id
    # Deferred: the LLM span reached the provider's processors only after its child had ended.
    order = [(kind, span_id) for kind, _, span_id in setup.user.events]
    assert order.index(("end", http[0].context.span_id)) < order.index(("start", llm.context.span_id))


def test_the_span_nests_under_the_callers_span_with_the_id_it_saw(ours: Any) -> None:
    setup = ours()
    tracer = setup.pipeline.provider.get_tracer("app")
    with tracer.start_as_current_span("request handler") as handler:
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="hello")
        with use_call_options(CallOptions(request_id="watched")):
            _complete()
    spans = setup.llm_spans()
    assert len(spans) == 2
    for span in spans:
        assert span.parent is not None and span.parent.span_id == handler.get_span_context().span_id
        assert span.context is not None and span.context.trace_id == handler.get_span_context().trace_id
        assert span.context.trace_flags.sampled
    assert {s.attributes[sc.LEANLLM_REQUEST_ID] for s in spans if s.attributes} >= {"watched"}


def test_user_processors_on_the_provider_get_every_kept_span(ours: Any) -> None:
    setup = ours(sampling_rate=0.0)
    for i in range(4):
        with use_call_options(CallOptions(request_id=f"in-{i}", sample=1.0)):
            _complete()
    for i in range(3):
        with use_call_options(CallOptions(request_id=f"out-{i}")):
            _complete()
    with use_call_options(CallOptions(request_id="error")), contextlib.suppress(Exception):
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response=Exception("boom"))
    exported = {str(s.attributes[sc.LEANLLM_REQUEST_ID]): s for s in setup.llm_spans() if s.attributes}
    assert set(exported) == {"in-0", "in-1", "in-2", "in-3", "error"}
    assert exported["error"].status.status_code is StatusCode.ERROR
    user = [s for s in setup.user.ended if sc.LEANLLM_REQUEST_ID in (s.attributes or {})]
    assert sorted(str(s.attributes[sc.LEANLLM_REQUEST_ID]) for s in user if s.attributes) == sorted(exported)
    starts = [span_id for kind, _, span_id in setup.user.events if kind == "start"]
    for span in user:  # on_start too, with the same span id, exactly once
        assert span.context is not None and starts.count(span.context.span_id) == 1
    counters = setup.pipeline.counters
    assert counters["kept"] == 4 and counters["kept_errors"] == 1


def test_sampled_out_calls_produce_no_span_but_are_counted(ours: Any) -> None:
    setup = ours(sampling_rate=0.0)
    before = setup.pipeline.counters["sampled_out"]
    for _ in range(5):
        _complete()
    assert setup.llm_spans() == []
    assert [e for e in setup.user.events if "gpt-4o-mini" in e[1]] == []
    assert setup.pipeline.counters["sampled_out"] - before == 5


def test_counters_and_flush_see_calls_not_yet_materialised(ours: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    setup = ours()
    monkeypatch.setattr(deferred, "_WAKE_S", 3600.0)  # the thread would not wake by itself during the test
    monkeypatch.setattr(deferred, "_WAKE_AT", 10**6)
    for _ in range(3):
        _complete()
    assert setup.pipeline.counters["kept"] == 3  # a counter read drains the queue first
    assert len(setup.llm_spans()) == 3


def test_a_full_backlog_is_materialised_on_the_callers_thread(ours: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    setup = ours()
    monkeypatch.setattr(deferred, "_MAX_PENDING", 0)
    _complete()
    # Nothing was queued: the span reached the provider's processors before the call returned.
    assert [kind for kind, name, _ in setup.user.events if "gpt-4o-mini" in name] == ["start", "end"]
    assert len(setup.llm_spans()) == 1


def test_deferred_span_equals_the_sdk_path_span(ours: Any) -> None:
    setup = ours()
    with use_call_options(CallOptions(request_id="deferred", labels={"team": "a"})):
        _complete(temperature=0.3)
    with deferred.disabled(), use_call_options(CallOptions(request_id="direct", labels={"team": "a"})):
        _complete(temperature=0.3)
    spans = {str(s.attributes[sc.LEANLLM_REQUEST_ID]): s for s in setup.llm_spans() if s.attributes}
    later, direct = spans["deferred"], spans["direct"]
    varying = {sc.LEANLLM_REQUEST_ID, sc.LEANLLM_LATENCY_MS, sc.GEN_AI_RESPONSE_ID}
    assert later.name == direct.name and later.kind is direct.kind is SpanKind.CLIENT
    assert later.status.status_code is direct.status.status_code
    assert later.instrumentation_scope == direct.instrumentation_scope and later.resource == direct.resource
    assert {k: v for k, v in (later.attributes or {}).items() if k not in varying} == {
        k: v for k, v in (direct.attributes or {}).items() if k not in varying
    }
    assert later.start_time is not None and later.end_time is not None and later.start_time <= later.end_time
    latency_ns = float((later.attributes or {})[sc.LEANLLM_LATENCY_MS]) * 1e6  # type: ignore[arg-type]
    assert abs((later.end_time - later.start_time) - latency_ns) < 1_000  # the call's own timestamps


def test_stream_ends_once_and_content_is_redacted_before_export(ours: Any) -> None:
    setup = ours(capture_content=True, redaction_mode="redacted")
    secret = "write to bob@example.com"
    stream = litellm.completion(
        model="gpt-4o-mini", messages=[{"role": "user", "content": secret}], mock_response="hello there", stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == "hello there"
    stream.close()  # after exhaustion: no second ending
    (span,) = setup.llm_spans()
    attributes = span.attributes or {}
    assert attributes[sc.LEANLLM_STREAM_OUTCOME] == sc.STREAM_COMPLETED
    assert span.status.status_code is not StatusCode.ERROR
    assert all("bob@example.com" not in str(value) for value in attributes.values())
    for recorded in setup.user.ended:  # the application's own processor never sees content either
        assert all("bob@example.com" not in str(value) for value in (recorded.attributes or {}).values())


def test_a_pipeline_that_is_not_ours_keeps_the_sdk_span_path(openai_server: OpenAIServer) -> None:
    exporter = InMemorySpanExporter()
    processor = LeanLLMSpanProcessor(TelemetrySettings())
    processor.add_span_processor(SimpleSpanProcessor(processor.wrap_exporter(exporter)))  # synchronous export
    provider = TracerProvider()
    provider.add_span_processor(processor)
    plain_exporter = InMemorySpanExporter()
    plain = TracerProvider()
    plain.add_span_processor(SimpleSpanProcessor(plain_exporter))  # no LeanLLMSpanProcessor at all
    instrumentor = LeanLLMInstrumentor()
    for target, spans in ((provider, exporter), (plain, plain_exporter)):
        instrumentor.instrument(tracer_provider=target, settings=TelemetrySettings())
        try:
            telemetry = instrumentor.telemetry
            assert telemetry is not None and telemetry.deferral() is None
            with contextlib.suppress(openai.OpenAIError):
                litellm.completion(
                    model="openai/gpt-4o-mini", messages=MESSAGES, api_base=openai_server.base_url,
                    api_key="sk-test", max_retries=0,
                )
            # The SDK span ended inside the call: exported before it returned, no flush needed.
            assert [s for s in spans.get_finished_spans() if sc.LEANLLM_REQUEST_ID in (s.attributes or {})]
        finally:
            instrumentor.uninstrument()
    provider.shutdown()
    plain.shutdown()


def test_a_guard_or_an_end_listener_keeps_the_sdk_span_path(ours: Any) -> None:
    setup = ours()
    telemetry = LeanLLMInstrumentor().telemetry
    assert telemetry is not None
    seen: list[Any] = []

    def listener(invocation: Any, span: Any, exc: BaseException | None) -> None:
        seen.append(span.attributes[sc.LEANLLM_REQUEST_ID])

    telemetry.add_end_listener(listener)
    try:
        assert telemetry.deferral() is None
        with use_call_options(CallOptions(request_id="heard")):
            _complete()
    finally:
        telemetry.remove_end_listener(listener)
    assert seen == ["heard"]  # the listener got the real SDK span on the caller's thread
    assert telemetry.deferral() is not None
    assert len(setup.llm_spans()) == 1


def test_metric_points_are_recorded_for_deferred_and_sampled_out_calls(ours: Any) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    setup = ours(meter_provider=meters, sampling_rate=0.0)
    for _ in range(2):
        _complete()  # sampled out: metrics only
    with use_call_options(CallOptions(sample=1.0)):
        _complete()  # sampled in, deferred
    assert len(setup.llm_spans()) == 1  # the flush also delivered the queued metric points
    data = reader.get_metrics_data()
    assert data is not None
    points = {
        metric.name: [point for point in metric.data.data_points]
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert sum(p.count for p in points[sc.METRIC_OPERATION_DURATION]) == 3
    token_points = points[sc.METRIC_TOKEN_USAGE]
    assert {p.attributes[sc.GEN_AI_TOKEN_TYPE] for p in token_points} == {sc.TOKEN_TYPE_INPUT, sc.TOKEN_TYPE_OUTPUT}
    assert sum(p.count for p in token_points) == 6
    meters.shutdown()
