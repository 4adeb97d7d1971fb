"""Alert sinks against loopback receivers: payload shapes, thresholds, cooldown, storm limit, dead endpoints."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import litellm
import pytest

from leanllm_otel.exporters.delivery import RetryPolicy
from leanllm_otel.guardrails import (
    Alert,
    AlertDispatcher,
    Budget,
    BudgetManager,
    EnforcementPolicy,
    Guard,
    LeanLLMPolicyViolation,
    PagerDutySink,
    SlackSink,
    WebhookSink,
)
from leanllm_otel.guardrails.alerts import BreakerSettings
from leanllm_otel.guardrails.guard import ErrorBurst
from leanllm_otel.processing.detectors import Severity


class Receiver:
    """Loopback JSON receiver; ``fail_first`` requests answer 500, ``delay_s`` stalls every answer."""

    def __init__(self, fail_first: int = 0, delay_s: float = 0.0) -> None:
        self.bodies: list[tuple[str, Any]] = []
        self.attempts = 0
        self.fail_first = fail_first
        self.delay_s = delay_s
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.attempts += 1
                if owner.delay_s:
                    time.sleep(owner.delay_s)
                status = 500 if owner.attempts <= owner.fail_first else 200
                if status == 200:
                    owner.bodies.append((self.path, json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(**kwargs: Any) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def dispatchers() -> Iterator[Callable[..., AlertDispatcher]]:
    made: list[AlertDispatcher] = []

    def make(sinks: Any, **kwargs: Any) -> AlertDispatcher:
        kwargs.setdefault("retry", RetryPolicy(max_attempts=3, initial_backoff_s=0.05, total_budget_s=2.0))
        made.append(AlertDispatcher(sinks, **kwargs))
        return made[-1]

    yield make
    for d in made:
        d.close(2.0)


def test_sink_payloads_and_severity_floors(receiver: Any, dispatchers: Any) -> None:
    r = receiver()
    d = dispatchers([WebhookSink(r.url + "/hook"), SlackSink(r.url + "/slack"),
                     PagerDutySink("R0UTINGKEY", url=r.url + "/v2/enqueue")])
    d.emit(Alert("finding", Severity.CRITICAL, "finding:AWS_KEY", "secret leaked", {"model": "gpt-4o-mini"}))
    d.emit(Alert("anomaly", Severity.MEDIUM, "anomaly:latency", "slow call", {"model": "gpt-4o-mini"}))
    assert d.flush(10)
    by_path: dict[str, list[Any]] = {}
    for path, body in r.bodies:
        by_path.setdefault(path, []).append(body)
    assert [b["severity"] for b in by_path["/hook"]] == ["critical", "medium"]
    assert by_path["/hook"][0]["kind"] == "finding" and by_path["/hook"][0]["details"] == {"model": "gpt-4o-mini"}
    assert len(by_path["/slack"]) == 2 and "secret leaked" in by_path["/slack"][0]["text"]
    assert by_path["/slack"][0]["blocks"][0]["type"] == "section"
    (pd,) = by_path["/v2/enqueue"]  # PagerDuty only gets CRITICAL
    assert pd["routing_key"] == "R0UTINGKEY" and pd["event_action"] == "trigger"
    assert pd["dedup_key"] == "leanllm-otel:finding:AWS_KEY"
    assert pd["payload"]["severity"] == "critical" and pd["payload"]["source"] == "leanllm-otel"
    assert pd["payload"]["summary"] == "secret leaked" and pd["payload"]["component"] == "gpt-4o-mini"
    assert "R0UTINGKEY" not in repr(PagerDutySink("R0UTINGKEY"))


def test_threshold_and_cooldown_per_key(receiver: Any, dispatchers: Any) -> None:
    r = receiver()
    d = dispatchers([WebhookSink(r.url)], min_severity=Severity.HIGH, cooldown_s=60)
    assert not d.emit(Alert("anomaly", Severity.MEDIUM, "k0", "below threshold"))
    assert d.emit(Alert("finding", Severity.HIGH, "k1", "first"))
    assert not d.emit(Alert("finding", Severity.HIGH, "k1", "repeat within cooldown"))
    assert d.emit(Alert("finding", Severity.HIGH, "k2", "other key"))
    assert d.flush(10)
    assert [body["title"] for _, body in r.bodies] == ["first", "other key"]
    assert d.counters["cooldown"] == 1 and d.counters["below_threshold"] == 1


def test_alert_storm_is_rate_limited(receiver: Any, dispatchers: Any) -> None:
    r = receiver()
    d = dispatchers([WebhookSink(r.url)], max_per_minute=6, burst=5, cooldown_s=0)
    accepted = sum(d.emit(Alert("finding", Severity.HIGH, f"k{i}", f"alert {i}")) for i in range(200))
    assert d.flush(10)
    assert 5 <= accepted <= 7  # the burst, plus at most what refilled while emitting
    assert len(r.bodies) == accepted
    assert d.counters["rate_limited"] == 200 - accepted


def test_retries_through_delivery_then_succeeds(receiver: Any, dispatchers: Any) -> None:
    r = receiver(fail_first=2)
    d = dispatchers([WebhookSink(r.url)])
    d.emit(Alert("budget", Severity.HIGH, "b", "budget"))
    assert d.flush(10)
    assert r.attempts == 3 and len(r.bodies) == 1


def test_dead_endpoint_never_slows_the_caller_and_the_breaker_opens(receiver: Any, dispatchers: Any) -> None:
    slow = receiver(delay_s=2.0)
    d = dispatchers([WebhookSink(slow.url), WebhookSink("http://127.0.0.1:9/nothing", name="dead")],
                    queue_size=5, cooldown_s=0, max_per_minute=6000, burst=1000, timeout_s=0.5,
                    breaker=BreakerSettings(failure_threshold=2, recovery_timeout_s=60))
    started = time.monotonic()
    results = [d.emit(Alert("finding", Severity.HIGH, f"k{i}", "x")) for i in range(100)]
    assert time.monotonic() - started < 1.0  # generous bound: emit only enqueues
    assert sum(results) <= 6  # bounded queue: the rest is dropped and counted
    assert d.counters["queue_full"] >= 94 and d.drops.by_reason()["alert_queue_full"] >= 94
    d.flush(20)
    assert "circuit_open" in d.drops.by_reason()  # the dead sink stopped being hammered


@pytest.fixture
def guarded(
    make_instrumented: Callable[..., Any], receiver: Any
) -> Iterator[Callable[..., tuple[Any, Guard, Receiver]]]:
    guards: list[Guard] = []

    def make(**guard_kwargs: Any) -> tuple[Any, Guard, Receiver]:
        r = receiver()
        inst = make_instrumented()
        alerts = AlertDispatcher([WebhookSink(r.url)], cooldown_s=300,
                                 retry=RetryPolicy(max_attempts=2, initial_backoff_s=0.05, total_budget_s=1.0))
        guard = Guard(alerts=alerts, **guard_kwargs).attach(inst.instrumentor)
        guards.append(guard)
        return inst, guard, r

    yield make
    for guard in guards:
        guard.close()


def test_guard_alerts_on_blocks_budgets_and_error_bursts(guarded: Any, openai_server: Any) -> None:
    _inst, guard, r = guarded(
        policy=EnforcementPolicy(block_secrets_in_prompt=True),
        budgets=BudgetManager([Budget("tiny", 1e-9, window="1h")]),
        error_burst=ErrorBurst(threshold=3, window_s=60),
    )
    url, key = openai_server.base_url, "sk-test"
    with pytest.raises(LeanLLMPolicyViolation):
        litellm.completion(model="openai/gpt-4o-mini", api_base=url, api_key=key,
                           messages=[{"role": "user", "content": "AKIAIOSFODNN7EXAMPLE"}])
    litellm.completion(model="openai/gpt-4o-mini", api_base=url, api_key=key,
                       messages=[{"role": "user", "content": "hi"}])
    for _ in range(4):
        with pytest.raises(litellm.exceptions.InternalServerError):
            litellm.completion(model="openai/err-500", api_base=url, api_key=key, max_retries=0,
                               messages=[{"role": "user", "content": "hi"}])
    assert guard.flush(15)
    kinds = {body["kind"]: body for _, body in r.bodies}
    assert set(kinds) == {"blocked", "budget", "error_burst"}, [b["title"] for _, b in r.bodies]
    assert kinds["blocked"]["details"]["finding_types"] == "AWS_KEY"
    assert "AKIAIOSFODNN7EXAMPLE" not in json.dumps([b for _, b in r.bodies])
    assert kinds["budget"]["details"]["budget"] == "tiny"
    assert kinds["error_burst"]["details"]["model"] == "err-500"
