"""``instrumentation/direct.py``: when our processor is the provider's only one, a deferred success becomes its
``ReadableSpan`` without the SDK ``_Span``. It must be the span the SDK path makes (name, ids, flags, parent,
resource, scope, timestamps, attribute values and their types), and any other provider shape, span limit or an
error keeps the SDK path."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import litellm
import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import leanllm_otel
from leanllm_otel import CallOptions, otel_compat, use_call_options
from leanllm_otel import semconv as sc
from leanllm_otel.instrumentation import deferred
from leanllm_otel.instrumentation.instrumentor import LeanLLMInstrumentor
from leanllm_otel.pipeline import Pipeline
from leanllm_otel.processing.sampling import LeanLLMSampler

# The direct path is taken only where the SDK's own span metrics are the no-op kind (SDK 1.41+ without a meter
# provider for them); on older SDKs (the otel-oldest matrix cell, 1.40) every span takes the SDK path, and these
# tests check that the spans are still the same.
DIRECT_ON_THIS_SDK = (
    type(otel_compat.tracer_self_metrics(TracerProvider().get_tracer("probe"))).__name__ == "NoOpTracerMetrics"
)

MESSAGES = [{"role": "user", "content": "hi"}]
VARYING = {sc.LEANLLM_REQUEST_ID, sc.LEANLLM_LATENCY_MS, sc.GEN_AI_RESPONSE_ID}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("LEANLLM_", "OTEL_")):
            monkeypatch.delenv(name)


class Sole:
    def __init__(self, pipeline: Pipeline, provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
        self.pipeline = pipeline
        self.provider = provider
        self.exporter = exporter

    def spans(self) -> dict[str, ReadableSpan]:
        assert self.pipeline.force_flush(10_000)
        return {
            str(s.attributes[sc.LEANLLM_REQUEST_ID]): s
            for s in self.exporter.get_finished_spans()
            if s.attributes and sc.LEANLLM_REQUEST_ID in s.attributes
        }


@pytest.fixture
def sole() -> Iterator[Any]:
    made: list[Pipeline] = []

    def make(limits: SpanLimits | None = None, **options: Any) -> Sole:
        provider = TracerProvider(sampler=LeanLLMSampler(leanllm_otel.pipeline.default_sampler()), span_limits=limits)
        exporter = InMemorySpanExporter()
        pipeline = leanllm_otel.configure(
            tracer_provider=provider, enable_persistence=False, exporters=[exporter], otlp=False, **options
        )
        made.append(pipeline)
        return Sole(pipeline, provider, exporter)

    yield make
    for pipeline in made:
        pipeline.shutdown(5000)


def _deferral() -> deferred.Deferral:
    telemetry = LeanLLMInstrumentor().telemetry
    assert telemetry is not None
    found = telemetry.deferral()
    assert found is not None
    return found


def _complete(**kwargs: Any) -> Any:
    return litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="hello", **kwargs)


def _pair(setup: Sole, **kwargs: Any) -> tuple[ReadableSpan, ReadableSpan]:
    with use_call_options(CallOptions(request_id="direct", labels={"team": "a"})):
        _complete(**kwargs)
    with deferred.disabled(), use_call_options(CallOptions(request_id="sdk", labels={"team": "a"})):
        _complete(**kwargs)
    spans = setup.spans()
    return spans["direct"], spans["sdk"]


def _same_span(direct: ReadableSpan, sdk: ReadableSpan) -> None:
    assert direct.name == sdk.name and direct.kind is sdk.kind
    assert direct.status.status_code is sdk.status.status_code is StatusCode.UNSET
    assert direct.instrumentation_scope == sdk.instrumentation_scope and direct.resource == sdk.resource
    assert direct.events == sdk.events == () and direct.links == sdk.links == ()
    assert direct.context is not None and sdk.context is not None
    assert direct.context.trace_flags == sdk.context.trace_flags and direct.context.trace_flags.sampled
    assert direct.context.trace_state == sdk.context.trace_state and not direct.context.is_remote
    ours = {k: v for k, v in (direct.attributes or {}).items() if k not in VARYING}
    theirs = {k: v for k, v in (sdk.attributes or {}).items() if k not in VARYING}
    assert ours == theirs
    assert {k: type(v) for k, v in ours.items()} == {k: type(v) for k, v in theirs.items()}  # tuples stay tuples
    assert list(ours) == list(theirs)  # and in the same order
    assert direct.start_time is not None and direct.end_time is not None
    latency_ns = float((direct.attributes or {})[sc.LEANLLM_LATENCY_MS]) * 1e6  # type: ignore[arg-type]
    assert abs((direct.end_time - direct.start_time) - latency_ns) < 1_000


def test_a_sole_processor_gets_the_span_the_sdk_path_makes(sole: Any) -> None:
    setup = sole()
    assert _deferral().direct is DIRECT_ON_THIS_SDK
    direct, sdk = _pair(setup, temperature=0.3, stop=["END", "STOP"], max_tokens=20)
    _same_span(direct, sdk)
    assert (direct.attributes or {})[sc.GEN_AI_REQUEST_STOP_SEQUENCES] == ("END", "STOP")
    assert direct.parent is None and sdk.parent is None


def test_the_direct_span_nests_under_the_callers_span(sole: Any) -> None:
    setup = sole()
    tracer = setup.provider.get_tracer("app")
    with tracer.start_as_current_span("request") as outer, use_call_options(CallOptions(request_id="inner")):
        _complete()
    span = setup.spans()["inner"]
    assert span.parent is not None and span.parent.span_id == outer.get_span_context().span_id
    assert span.context is not None and span.context.trace_id == outer.get_span_context().trace_id


def test_errors_and_sampled_out_calls_are_unchanged_on_a_sole_processor(sole: Any) -> None:
    setup = sole(sampling_rate=0.0)
    assert _deferral().direct is DIRECT_ON_THIS_SDK
    for _ in range(3):
        _complete()
    with use_call_options(CallOptions(request_id="error")), contextlib.suppress(Exception):
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response=Exception("boom"))
    with use_call_options(CallOptions(request_id="kept", sample=1.0)):
        _complete()
    spans = setup.spans()
    assert set(spans) == {"error", "kept"}
    assert spans["error"].status.status_code is StatusCode.ERROR
    assert [e.name for e in spans["error"].events] == [sc.EXCEPTION_EVENT]
    counters = setup.pipeline.counters
    assert counters["kept"] == 1 and counters["kept_errors"] == 1 and counters["sampled_out"] >= 3


def test_a_value_length_limit_keeps_the_sdk_path(sole: Any) -> None:
    setup = sole(limits=SpanLimits(max_span_attribute_length=4))
    assert not _deferral().direct
    with use_call_options(CallOptions(request_id="limited")):
        _complete()
    (span,) = setup.spans().values()
    attributes = span.attributes or {}
    assert attributes[sc.GEN_AI_REQUEST_MODEL] == "gpt-" and attributes[sc.LEANLLM_REQUEST_ID] == "limi"  # as set


def test_an_attribute_count_limit_is_honoured(sole: Any) -> None:
    setup = sole(limits=SpanLimits(max_span_attributes=5))
    _complete()
    with deferred.disabled():
        _complete()
    assert setup.pipeline.force_flush(10_000)
    direct, sdk = [s for s in setup.exporter.get_finished_spans() if s.name.startswith("chat")]
    assert len(direct.attributes or {}) == len(sdk.attributes or {}) == 5  # the oldest dropped, as the SDK does
    assert list(direct.attributes or {}) == list(sdk.attributes or {})
    assert direct.dropped_attributes == sdk.dropped_attributes > 0


def test_a_processor_added_to_the_provider_later_ends_the_direct_path(sole: Any) -> None:
    setup = sole()
    assert _deferral().direct is DIRECT_ON_THIS_SDK
    user = InMemorySpanExporter()
    setup.provider.add_span_processor(SimpleSpanProcessor(user))
    assert not _deferral().direct
    with use_call_options(CallOptions(request_id="seen")):
        _complete()
    assert "seen" in setup.spans()
    assert [s for s in user.get_finished_spans() if (s.attributes or {}).get(sc.LEANLLM_REQUEST_ID) == "seen"]


def test_a_batch_processor_that_watches_span_starts_keeps_the_sdk_path(sole: Any) -> None:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    started: list[str] = []

    class Watching(BatchSpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            started.append(span.name)

    setup = sole()
    assert _deferral().direct is DIRECT_ON_THIS_SDK
    watched = InMemorySpanExporter()
    setup.pipeline.processor.add_span_processor(Watching(watched))  # behind ours, as configure() puts exporters
    assert not _deferral().direct
    with use_call_options(CallOptions(request_id="watched")):
        _complete()
    assert "watched" in setup.spans()
    assert [name for name in started if name.startswith("chat")] == ["chat gpt-4o-mini"]


_PUBLIC = ("name", "context", "parent", "resource", "attributes", "events", "links", "kind", "status",
           "start_time", "end_time", "instrumentation_scope")  # fmt: skip


def _public(span: ReadableSpan) -> dict[str, Any]:
    values = {name: getattr(span, name) for name in _PUBLIC}
    values["attributes"] = dict(values["attributes"] or {})
    values["events"] = list(values["events"])
    values["links"] = list(values["links"])
    return values


def test_copy_span_copies_a_readable_span_field_by_field_as_the_constructor_would() -> None:
    from opentelemetry.sdk.trace import Event
    from opentelemetry.trace import Status

    from leanllm_otel.exporters.wrapping import copy_span

    tracer = TracerProvider().get_tracer("copy")
    with tracer.start_as_current_span("parent"):
        sdk_span = tracer.start_span("child", attributes={"a": 1, "b": "x"})
        sdk_span.add_event("e", {"k": "v"})
        sdk_span.end()
    readable = ReadableSpan(**{name: getattr(sdk_span, name) for name in _PUBLIC})
    readable.leanllm_record = object()  # type: ignore[attr-defined]
    changes: dict[str, Any] = {
        "attributes": {"a": 2}, "events": [Event("f", {"n": 1}, 5)], "name": "renamed", "status": Status(StatusCode.OK),
    }  # fmt: skip
    for source in (readable, sdk_span):
        for given in ({}, {"attributes": changes["attributes"]}, changes):
            copy = copy_span(source, **given)
            assert type(copy) is ReadableSpan
            expected = {**_public(source), **{k: list(v) if k == "events" else v for k, v in given.items()}}
            assert _public(copy) == expected
            assert not hasattr(copy, "leanllm_record")  # what we attach to a span does not travel
    assert _public(readable) == _public(sdk_span)  # the source is untouched
    # The fast copy covers exactly the plain ReadableSpan; an unknown field falls back to the constructor.
    assert otel_compat.copied_readable_span(sdk_span, {}) is None
    assert otel_compat.copied_readable_span(readable, {"_no_such_field": 1}) is None
    assert otel_compat.copied_readable_span(readable, {}) is not None
