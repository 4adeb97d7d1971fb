"""Anomaly detection: rolling baselines per model and label; findings on the exported span; guardrail events."""

from __future__ import annotations

import random
from typing import Any

import litellm
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from leanllm_otel import semconv as sc
from leanllm_otel.guardrails import AnomalyConfig, AnomalyDetector, Guard, InMemoryLedger
from leanllm_otel.instrumentation.instrumentor import LeanLLMInstrumentor
from leanllm_otel.processing.processor import LeanLLMSpanProcessor
from leanllm_otel.settings import TelemetrySettings


def test_spike_after_min_samples_only() -> None:
    rng = random.Random(7)
    detector = AnomalyDetector(AnomalyConfig(sigma=3.0, min_samples=20))
    for _ in range(19):
        assert detector.observe("m", {}, {"latency_ms": 100 + rng.uniform(-10, 10)}, False) == []
    # Still inside the baseline's spread: nothing.
    assert detector.observe("m", {}, {"latency_ms": 112}, False) == []
    (anomaly,) = detector.observe("m", {}, {"latency_ms": 900, "cost_usd": 0.001}, False)
    assert anomaly.kind == "latency_spike" and anomaly.key == "model=m" and anomaly.score > 3
    assert 90 < anomaly.baseline < 110
    # Another model has its own (empty) baseline.
    assert detector.observe("other", {}, {"latency_ms": 900}, False) == []


def test_per_label_baselines_and_low_values_are_fine() -> None:
    detector = AnomalyDetector(AnomalyConfig(min_samples=5, by_labels=("feature",)))
    for _ in range(10):
        detector.observe("m", {"feature": "search"}, {"total_tokens": 100.0}, False)
        detector.observe("m", {"feature": "summarize"}, {"total_tokens": 5000.0}, False)
    found = detector.observe("m", {"feature": "search"}, {"total_tokens": 5000.0}, False)
    # Normal for the model as a whole (summaries are that big), abnormal for search.
    assert {a.key for a in found} == {"model=m,feature=search"}
    assert detector.observe("m", {"feature": "search"}, {"total_tokens": 10.0}, False) == []


def test_error_rate_spike() -> None:
    detector = AnomalyDetector(AnomalyConfig(min_samples=20))
    for i in range(60):
        assert detector.observe("m", {}, {}, i % 30 == 0) == []
    found: list[Any] = []
    for _ in range(6):
        found += detector.observe("m", {}, {}, True)
    assert any(a.kind == "error_rate_spike" for a in found)


def test_latency_spike_reaches_the_exported_span_and_the_event_log(openai_server: Any) -> None:
    exporter = InMemorySpanExporter()
    ledger = InMemoryLedger()
    guard = Guard(anomalies=AnomalyDetector(AnomalyConfig(min_samples=5, sigma=3.0)), events_ledger=ledger)
    processor = LeanLLMSpanProcessor(TelemetrySettings())
    batch = BatchSpanProcessor(processor.wrap_exporter(guard.wrap_exporter(exporter, wait_s=5.0)))
    processor.add_span_processor(batch)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    instrumentor = LeanLLMInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=TelemetrySettings())
    try:
        # Warm-up outside the baseline: the first call of a process pays LiteLLM's and the pool's start-up.
        litellm.completion(model="openai/gpt-4o-mini", api_base=openai_server.base_url, api_key="sk-test",
                           messages=[{"role": "user", "content": "warm up"}])
        guard.attach(instrumentor)
        for i in range(8):
            litellm.completion(model="openai/gpt-4o-mini", api_base=openai_server.base_url, api_key="sk-test",
                               messages=[{"role": "user", "content": f"hello {i}"}])
        litellm.completion(model="openai/gpt-4o-mini", api_base=openai_server.base_url, api_key="sk-test",
                           messages=[{"role": "user", "content": "hello 9"}],
                           extra_headers={"x-mock-behaviour": "slow-1.0"})
        assert guard.flush(10)
        provider.force_flush()
    finally:
        instrumentor.uninstrument()
        guard.close()
        provider.shutdown()
    spans = [s for s in exporter.get_finished_spans() if sc.LEANLLM_REQUEST_ID in (s.attributes or {})]
    assert len(spans) == 10
    flagged = [s for s in spans if s.attributes.get(sc.LEANLLM_ANOMALIES)]
    assert len(flagged) == 1 and "latency_spike" in flagged[0].attributes[sc.LEANLLM_ANOMALIES]
    assert flagged[0].attributes[sc.LEANLLM_LATENCY_MS] >= 1000
    assert [(e["kind"], e["name"]) for e in ledger.events] == [("anomaly", "latency_spike")]
    assert ledger.events[0]["event_id"] == flagged[0].attributes[sc.LEANLLM_REQUEST_ID]
