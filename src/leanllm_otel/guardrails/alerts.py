"""Alert sinks (generic webhook, Slack, PagerDuty Events API v2) behind one bounded, rate-limited dispatcher.

:meth:`AlertDispatcher.emit` never blocks and never raises: it applies the per-key cooldown and the storm limit
(a token bucket: ``max_per_minute`` sustained, bursts of ``burst``), then ``put_nowait`` on a bounded queue (full
queue: the alert is dropped and counted). One daemon thread delivers each alert to every sink whose
``min_severity`` it meets, through :class:`~leanllm_otel.exporters.delivery.Delivery` (retries with backoff and
jitter inside a budget, a circuit breaker per sink, drops counted), so a dead endpoint costs the application
nothing and stops being hammered.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import httpx

from leanllm_otel.exporters.delivery import (
    CircuitBreaker,
    Delivery,
    DropCounter,
    PermanentError,
    RetryableError,
    RetryPolicy,
    breaker_parameters,
)
from leanllm_otel.processing.detectors import Severity

__all__ = [
    "Alert",
    "AlertDispatcher",
    "AlertSink",
    "BreakerSettings",
    "PagerDutySink",
    "SlackSink",
    "WebhookSink",
]

_logger = logging.getLogger(__name__)

# Kinds of alert the guard emits.
FINDING = "finding"
BLOCKED = "blocked"
ERROR_BURST = "error_burst"
BUDGET = "budget"
ANOMALY = "anomaly"


@dataclass(frozen=True)
class Alert:
    """One notification. ``key`` identifies "the same alert" for the cooldown (e.g. ``finding:AWS_KEY``)."""

    kind: str
    severity: Severity
    key: str
    title: str
    details: Mapping[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity.name.lower(),
            "key": self.key,
            "title": self.title,
            "details": dict(self.details),
            "timestamp": datetime.fromtimestamp(self.timestamp, timezone.utc).isoformat(),
            "source": "leanllm-otel",
        }


class AlertSink(Protocol):
    """Where alerts go: a name, a severity floor, and the HTTP request for one alert."""

    @property
    def name(self) -> str: ...

    @property
    def min_severity(self) -> Severity: ...

    def request(self, alert: Alert) -> tuple[str, dict[str, Any], dict[str, str]]:
        """``(url, json_body, headers)``."""
        ...


@dataclass(frozen=True)
class WebhookSink:
    """POSTs :meth:`Alert.to_json` to ``url`` (SIEMs, log pipelines, your own service)."""

    url: str
    min_severity: Severity = Severity.LOW
    headers: Mapping[str, str] = field(default_factory=dict)
    name: str = "webhook"

    def request(self, alert: Alert) -> tuple[str, dict[str, Any], dict[str, str]]:
        return self.url, alert.to_json(), dict(self.headers)


_SLACK_EMOJI = {
    Severity.LOW: ":information_source:",
    Severity.MEDIUM: ":warning:",
    Severity.HIGH: ":rotating_light:",
    Severity.CRITICAL: ":fire:",
}


@dataclass(frozen=True)
class SlackSink:
    """A Slack incoming webhook (or anything that accepts its payload: Mattermost, Rocket.Chat, Discord /slack)."""

    url: str
    min_severity: Severity = Severity.MEDIUM
    name: str = "slack"

    def request(self, alert: Alert) -> tuple[str, dict[str, Any], dict[str, str]]:
        headline = f"{_SLACK_EMOJI[alert.severity]} *[{alert.severity.name}] {alert.title}*"
        facts = "\n".join(f"*{k}*: {v}" for k, v in sorted(alert.details.items()))
        body: dict[str, Any] = {
            "text": f"[{alert.severity.name}] {alert.title}",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": headline}}],
        }
        if facts:
            body["blocks"].append({"type": "section", "text": {"type": "mrkdwn", "text": facts}})
        return self.url, body, {}


_PD_SEVERITY = {Severity.LOW: "info", Severity.MEDIUM: "warning", Severity.HIGH: "error", Severity.CRITICAL: "critical"}


@dataclass(frozen=True)
class PagerDutySink:
    """PagerDuty Events API v2 ``trigger`` events (``dedup_key`` = the alert key, so repeats group)."""

    routing_key: str
    min_severity: Severity = Severity.CRITICAL
    url: str = "https://events.pagerduty.com/v2/enqueue"
    name: str = "pagerduty"

    def request(self, alert: Alert) -> tuple[str, dict[str, Any], dict[str, str]]:
        body = {
            "routing_key": self.routing_key,
            "event_action": "trigger",
            "dedup_key": f"leanllm-otel:{alert.key}",
            "payload": {
                "summary": alert.title[:1024],
                "source": "leanllm-otel",
                "severity": _PD_SEVERITY[alert.severity],
                "timestamp": datetime.fromtimestamp(alert.timestamp, timezone.utc).isoformat(),
                "component": str(alert.details.get("model", "")) or None,
                "group": alert.kind,
                "class": alert.kind,
                "custom_details": dict(alert.details),
            },
        }
        return self.url, body, {}

    def __repr__(self) -> str:  # the routing key is a credential
        return f"PagerDutySink(url={self.url!r}, min_severity={self.min_severity.name})"


@dataclass(frozen=True)
class BreakerSettings:
    """Circuit-breaker settings, the exporters' (``LEANLLM_CIRCUIT_BREAKER_*``) unless given."""

    failure_threshold: int = 5
    recovery_timeout_s: float = 30.0
    half_open_max_calls: int = 1

    @classmethod
    def from_config(cls, config: Any) -> BreakerSettings:
        return cls(**breaker_parameters(config))

    def build(self) -> CircuitBreaker:
        return CircuitBreaker(self.failure_threshold, self.recovery_timeout_s, self.half_open_max_calls)


class _TokenBucket:
    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(max(1, burst))
        self.tokens = self.capacity
        self.clock = clock
        self.stamp = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


_STOP = object()


class AlertDispatcher:
    """Cooldown, storm limit, bounded queue and one delivery thread for a set of sinks."""

    def __init__(
        self,
        sinks: Sequence[AlertSink],
        *,
        min_severity: Severity = Severity.LOW,
        cooldown_s: float = 300.0,
        max_per_minute: float = 30.0,
        burst: int = 10,
        queue_size: int = 1000,
        timeout_s: float = 5.0,
        retry: RetryPolicy | None = None,
        breaker: BreakerSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sinks = tuple(sinks)
        self.min_severity = min_severity
        self.cooldown_s = cooldown_s
        self.drops = DropCounter()
        self._clock = clock
        self._lock = threading.Lock()
        self._last_sent: OrderedDict[str, float] = OrderedDict()
        self._bucket = _TokenBucket(max_per_minute, burst, clock)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, queue_size))
        policy = retry or RetryPolicy(max_attempts=3, initial_backoff_s=0.5, total_budget_s=10.0)
        settings = breaker or BreakerSettings()
        self._deliveries = {
            sink.name: Delivery(f"alerts:{sink.name}", policy, settings.build(), self.drops) for sink in self.sinks
        }
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False)
        self.counters = {
            "emitted": 0,
            "sent": 0,
            "cooldown": 0,
            "rate_limited": 0,
            "queue_full": 0,
            "below_threshold": 0,
        }
        self._unfinished = 0
        self._idle = threading.Condition(self._lock)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="leanllm-alerts", daemon=True)
        self._thread.start()

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def emit(self, alert: Alert) -> bool:
        """Queue ``alert`` unless below threshold, in cooldown, rate-limited or the queue is full. Never blocks."""
        with self._lock:
            if self._closed:
                return False
            if alert.severity < self.min_severity:
                self._count("below_threshold")
                return False
            now = self._clock()
            last = self._last_sent.get(alert.key)
            if last is not None and now - last < self.cooldown_s:
                self._count("cooldown")
                return False
            if not self._bucket.take():
                self._count("rate_limited")
                return False
            try:
                self._queue.put_nowait(alert)
            except queue.Full:
                self._count("queue_full")
                self.drops.add(1, "alert_queue_full")
                return False
            self._last_sent[alert.key] = now
            self._last_sent.move_to_end(alert.key)
            while len(self._last_sent) > 10_000:
                self._last_sent.popitem(last=False)
            self._unfinished += 1
            self._count("emitted")
            return True

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self._deliver(item)
            except Exception:
                _logger.exception("leanllm-otel: alert delivery failed")
            finally:
                with self._lock:
                    self._unfinished -= 1
                    self._idle.notify_all()

    def _deliver(self, alert: Alert) -> None:
        for sink in self.sinks:
            if alert.severity < sink.min_severity:
                continue
            url, body, headers = sink.request(alert)
            payload = json.dumps(body, default=str).encode()

            def attempt(url: str = url, headers: dict[str, str] = headers, payload: bytes = payload) -> None:
                try:
                    response = self._client.post(
                        url, content=payload, headers={"Content-Type": "application/json", **headers}
                    )
                except httpx.HTTPError as exc:
                    raise RetryableError(type(exc).__name__) from None
                if response.status_code == 429 or response.status_code >= 500:
                    raise RetryableError(f"HTTP {response.status_code}")
                if response.status_code >= 400:
                    raise PermanentError(f"HTTP {response.status_code}")

            if self._deliveries[sink.name].send(attempt, 1):
                with self._lock:
                    self._count("sent")

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued alert has been handled (delivered or dropped)."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._unfinished > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued (within ``timeout_s``), then stop the thread."""
        self.flush(timeout_s)
        with self._lock:
            self._closed = True
        for delivery in self._deliveries.values():
            delivery.close()
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=1.0)
        self._thread.join(timeout_s)
        self._client.close()
