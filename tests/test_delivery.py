"""Delivery machinery: retry policy, circuit breaker, drop counter, Delivery.send, LeanLLMBatchSpanProcessor."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.exporters.batching import LeanLLMBatchSpanProcessor
from leanllm_otel.exporters.delivery import (
    CircuitBreaker,
    Delivery,
    DropCounter,
    PermanentError,
    RetryableError,
    RetryPolicy,
)
from loopback.events import make_llm_span


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _delivery(policy: RetryPolicy, breaker: CircuitBreaker | None = None) -> tuple[Delivery, list[tuple[int, str]]]:
    calls: list[tuple[int, str]] = []
    drops = DropCounter([lambda count, reason: calls.append((count, reason))])
    return Delivery("test", policy, breaker or CircuitBreaker(failure_threshold=1000), drops), calls


# --- RetryPolicy -------------------------------------------------------------------------------------------


def test_backoff_doubles_and_jitter_stays_within_twenty_percent() -> None:
    policy = RetryPolicy(initial_backoff_s=0.5)
    assert policy.backoff_s(1, rng=lambda lo, hi: lo) == pytest.approx(0.4)
    assert policy.backoff_s(1, rng=lambda lo, hi: hi) == pytest.approx(0.6)
    assert policy.backoff_s(3, rng=lambda lo, hi: 1.0) == pytest.approx(2.0)
    samples = [policy.backoff_s(2) for _ in range(500)]
    assert min(samples) >= 0.8 and max(samples) <= 1.2
    assert max(samples) - min(samples) > 0.1  # jitter is really applied


def test_policy_and_breaker_from_config() -> None:
    config = LeanLLMConfig(
        retry_max_attempts=7, retry_initial_backoff_ms=250, retry_total_budget_ms=9000,
        circuit_breaker_failure_threshold=3, circuit_breaker_recovery_timeout_ms=1500,
        circuit_breaker_half_open_max_calls=2,
    )
    assert RetryPolicy.from_config(config) == RetryPolicy(7, 0.25, 9.0, 0.2)
    clock = FakeClock()
    breaker = CircuitBreaker.from_config(config)
    breaker._clock = clock  # the config does not carry a clock
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state == "open"
    clock.now += 1.5
    assert breaker.state == "half_open"
    assert breaker.allow() and breaker.allow() and not breaker.allow()


# --- CircuitBreaker ----------------------------------------------------------------------------------------


def test_breaker_opens_after_consecutive_failures_and_probes_after_recovery() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout_s=10, half_open_max_calls=1, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # resets the consecutive count
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open"
    assert not breaker.allow()
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.allow()  # the one probe
    assert breaker.state == "half_open"
    assert not breaker.allow()  # no second probe while the first is out
    breaker.record_failure()  # probe failed: open again for a full recovery timeout
    assert breaker.state == "open"
    clock.now += 10
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()


# --- DropCounter -------------------------------------------------------------------------------------------


def test_drop_counter_counts_by_reason_and_survives_bad_callbacks() -> None:
    seen: list[tuple[int, str]] = []

    def bad(count: int, reason: str) -> None:
        raise RuntimeError("callback bug")

    counter = DropCounter([bad])
    counter.add_callback(lambda c, r: seen.append((c, r)))
    counter.add(3, "queue_full")
    counter.add(2, "retry_budget_exhausted")
    counter.add(0, "nothing")
    assert counter.total == 5
    assert counter.by_reason() == {"queue_full": 3, "retry_budget_exhausted": 2}
    assert seen == [(3, "queue_full"), (2, "retry_budget_exhausted")]


def test_drop_counter_is_thread_safe() -> None:
    counter = DropCounter()
    threads = [threading.Thread(target=lambda: [counter.add(1, "r") for _ in range(2000)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert counter.total == 16000 and counter.by_reason() == {"r": 16000}


# --- Delivery ----------------------------------------------------------------------------------------------


def test_send_retries_retryable_errors_then_delivers() -> None:
    delivery, drops = _delivery(RetryPolicy(max_attempts=5, initial_backoff_s=0.01, total_budget_s=5))
    attempts: list[float] = []

    def attempt() -> None:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise RetryableError("database is locked")

    assert delivery.send(attempt, 4) is True
    assert len(attempts) == 3 and drops == []
    assert attempts[2] - attempts[1] >= 0.015  # second backoff ~0.02s (doubled), jitter at most -20%


def test_send_drops_after_max_attempts_and_calls_back() -> None:
    delivery, drops = _delivery(RetryPolicy(max_attempts=3, initial_backoff_s=0.001, total_budget_s=5))
    attempts = []

    def attempt() -> None:
        attempts.append(1)
        raise ConnectionError("refused")  # any exception counts as retryable

    assert delivery.send(attempt, 7) is False
    assert len(attempts) == 3
    assert drops == [(7, "retry_budget_exhausted")]
    assert delivery.drops.total == 7


def test_send_stops_when_the_total_budget_would_be_exceeded() -> None:
    delivery, drops = _delivery(RetryPolicy(max_attempts=100, initial_backoff_s=0.05, total_budget_s=0.3))
    started = time.monotonic()
    attempts = []

    def attempt() -> None:
        attempts.append(1)
        raise RetryableError("down")

    assert delivery.send(attempt, 2) is False
    elapsed = time.monotonic() - started
    assert elapsed < 0.3 + 0.1  # never sleeps past the budget
    assert 2 <= len(attempts) < 10
    assert drops == [(2, "retry_budget_exhausted")]


def test_send_honours_retry_after() -> None:
    delivery, _ = _delivery(RetryPolicy(max_attempts=3, initial_backoff_s=0.001, total_budget_s=5))
    stamps: list[float] = []

    def attempt() -> None:
        stamps.append(time.monotonic())
        if len(stamps) == 1:
            raise RetryableError("429", retry_after_s=0.2)

    assert delivery.send(attempt, 1)
    assert stamps[1] - stamps[0] >= 0.19


def test_permanent_error_is_not_retried() -> None:
    delivery, drops = _delivery(RetryPolicy(max_attempts=5, initial_backoff_s=0.001))
    attempts = []

    def attempt() -> None:
        attempts.append(1)
        raise PermanentError("rejected_by_database")

    assert delivery.send(attempt, 3) is False
    assert attempts == [1]
    assert drops == [(3, "rejected_by_database")]


def test_open_circuit_drops_without_calling_the_backend() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout_s=30, clock=clock)
    delivery, drops = _delivery(RetryPolicy(max_attempts=2, initial_backoff_s=0.001), breaker)
    attempts = []

    def failing() -> None:
        attempts.append(1)
        raise RetryableError("down")

    assert not delivery.send(failing, 1)  # two failures open the circuit
    assert breaker.state == "open"
    attempts.clear()
    assert not delivery.send(failing, 5)
    assert attempts == []
    assert drops[-1] == (5, "circuit_open")
    clock.now += 31  # recovery: one probe goes through and closes the circuit
    assert delivery.send(lambda: None, 1)
    assert breaker.state == "closed"


def test_close_interrupts_a_backoff_sleep() -> None:
    delivery, drops = _delivery(RetryPolicy(max_attempts=10, initial_backoff_s=30, total_budget_s=600))
    result: list[bool] = []

    def failing() -> None:
        raise RetryableError("down")

    thread = threading.Thread(target=lambda: result.append(delivery.send(failing, 4)))
    started = time.monotonic()
    thread.start()
    time.sleep(0.1)
    delivery.close()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 1.0
    assert result == [False] and drops == [(4, "shutdown")]


# --- LeanLLMBatchSpanProcessor -----------------------------------------------------------------------------


class GatedExporter(SpanExporter):
    """Blocks in export until released; records what it received."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.received: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.gate.wait(10)
        self.received.extend(span.name for span in spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.gate.set()


def _provider(processor: LeanLLMBatchSpanProcessor) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return provider


def test_queue_full_drops_oldest_and_counts_them() -> None:
    exporter = GatedExporter()
    dropped: list[tuple[int, str]] = []
    drops = DropCounter([lambda c, r: dropped.append((c, r))])
    processor = LeanLLMBatchSpanProcessor(
        exporter, LeanLLMConfig(queue_max_size=10, batch_size=1, flush_interval_ms=60_000), drops=drops
    )
    tracer = _provider(processor).get_tracer("t")
    tracer.start_span("first").end()
    assert exporter.entered.wait(5)  # the worker is now stuck in export with "first"
    for i in range(25):
        tracer.start_span(f"s{i}").end()
    assert drops.total == 15
    assert drops.by_reason() == {"queue_full": 15}
    assert sum(c for c, _ in dropped) == 15
    exporter.gate.set()
    assert processor.force_flush()
    # Oldest were dropped: the ten newest survive.
    assert exporter.received == ["first", *[f"s{i}" for i in range(15, 25)]]
    processor.shutdown()


def test_batch_size_triggers_a_flush_before_the_interval() -> None:
    exporter = GatedExporter()
    exporter.gate.set()
    processor = LeanLLMBatchSpanProcessor(exporter, LeanLLMConfig(batch_size=5, flush_interval_ms=600_000))
    tracer = _provider(processor).get_tracer("t")
    for i in range(5):
        tracer.start_span(f"s{i}").end()
    deadline = time.monotonic() + 5
    while len(exporter.received) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(exporter.received) == 5  # no force_flush, 10-minute interval: the batch size woke the worker
    processor.shutdown()


def test_flush_interval_exports_a_partial_batch() -> None:
    exporter = GatedExporter()
    exporter.gate.set()
    processor = LeanLLMBatchSpanProcessor(exporter, LeanLLMConfig(batch_size=100, flush_interval_ms=100))
    _provider(processor).get_tracer("t").start_span("lonely").end()
    deadline = time.monotonic() + 5
    while not exporter.received and time.monotonic() < deadline:
        time.sleep(0.01)
    assert exporter.received == ["lonely"]
    processor.shutdown()


class RetryingForeverExporter(SpanExporter):
    """Every write fails; retries would take minutes unless shutdown interrupts them."""

    def __init__(self) -> None:
        self.drops = DropCounter()
        self.delivery = Delivery(
            "stuck",
            RetryPolicy(max_attempts=100, initial_backoff_s=20, total_budget_s=600),
            CircuitBreaker(),
            self.drops,
        )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        def attempt() -> None:
            raise RetryableError("backend down")

        return SpanExportResult.SUCCESS if self.delivery.send(attempt, len(spans)) else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.delivery.close()


def test_shutdown_is_bounded_when_the_exporter_keeps_retrying() -> None:
    exporter = RetryingForeverExporter()
    processor = LeanLLMBatchSpanProcessor(
        exporter, LeanLLMConfig(batch_size=2, flush_interval_ms=50, shutdown_timeout_ms=300)
    )
    assert processor.drops is exporter.drops  # the exporter's counter is shared
    tracer = _provider(processor).get_tracer("t")
    for _ in range(4):
        tracer.start_span("x").end()
    time.sleep(0.2)  # the worker is inside a 20 s backoff now
    started = time.monotonic()
    processor.shutdown()
    assert time.monotonic() - started < 1.5
    deadline = time.monotonic() + 2
    # The batch in flight is dropped as its backoff is interrupted (the queued ones count as shutdown_timeout).
    while exporter.drops.by_reason().get("shutdown", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert exporter.drops.by_reason().get("shutdown", 0) >= 2  # counted, not silently lost


def test_spans_after_shutdown_are_counted() -> None:
    exporter = GatedExporter()
    exporter.gate.set()
    processor = LeanLLMBatchSpanProcessor(exporter, LeanLLMConfig())
    tracer = _provider(processor).get_tracer("t")
    processor.shutdown()
    processor.on_end(make_llm_span())
    assert processor.drops.by_reason() == {"already_shutdown": 1}
    del tracer
