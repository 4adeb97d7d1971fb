"""Resilient delivery shared by every leanllm exporter: retries, circuit breaker, drop accounting.

An exporter wraps one backend write in an ``attempt`` callable and hands it to :meth:`Delivery.send`, which
retries it with exponential backoff (+-jitter) inside a total time budget, stops hammering a backend that keeps
failing (circuit breaker), and counts whatever it gives up on (:class:`DropCounter`). Nothing here raises into
the caller: the worst outcome of ``send`` is ``False`` and a counted drop.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from leanllm_otel.delivery_errors import PermanentError as PermanentError
from leanllm_otel.delivery_errors import RetryableError as RetryableError

if TYPE_CHECKING:
    from leanllm_otel.config import LeanLLMConfig

_logger = logging.getLogger(__name__)

BreakerState = Literal["closed", "open", "half_open"]

# Drop reasons used by this module (exporters may add their own).
REASON_RETRY_EXHAUSTED = "retry_budget_exhausted"
REASON_CIRCUIT_OPEN = "circuit_open"
REASON_SHUTDOWN = "shutdown"


def breaker_parameters(config: LeanLLMConfig) -> dict[str, Any]:
    """The circuit-breaker arguments ``LEANLLM_CIRCUIT_BREAKER_*`` ask for (the exporters' and the alert sinks')."""
    return {
        "failure_threshold": int(config.circuit_breaker_failure_threshold),
        "recovery_timeout_s": config.circuit_breaker_recovery_timeout_ms / 1000.0,
        "half_open_max_calls": int(config.circuit_breaker_half_open_max_calls),
    }


@dataclass(frozen=True)
class RetryPolicy:
    """How long one batch may be retried: attempts, first backoff (doubling), total budget, jitter fraction."""

    max_attempts: int = 5
    initial_backoff_s: float = 0.5
    total_budget_s: float = 30.0
    jitter: float = 0.2

    @classmethod
    def from_config(cls, config: LeanLLMConfig) -> RetryPolicy:
        return cls(
            max_attempts=max(1, int(config.retry_max_attempts)),
            initial_backoff_s=max(0.0, config.retry_initial_backoff_ms / 1000.0),
            total_budget_s=max(0.0, config.retry_total_budget_ms / 1000.0),
        )

    def backoff_s(self, retry_number: int, rng: Callable[[float, float], float] = random.uniform) -> float:
        """Delay before retry ``retry_number`` (1-based): ``initial * 2**(n-1)``, scaled by ``1 +- jitter``."""
        base: float = self.initial_backoff_s * (2.0 ** max(0, retry_number - 1))
        if self.jitter <= 0:
            return base
        return base * float(rng(1.0 - self.jitter, 1.0 + self.jitter))


class CircuitBreaker:
    """Thread-safe circuit breaker.

    ``closed`` -> ``open`` after ``failure_threshold`` consecutive failures; ``open`` -> ``half_open`` once
    ``recovery_timeout_s`` has passed; ``half_open`` lets ``half_open_max_calls`` probes through: a success closes
    the circuit, a failure opens it again for another recovery timeout.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout_s: float = 30.0,
        half_open_max_calls: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = max(1, failure_threshold)
        self._recovery_s = max(0.0, recovery_timeout_s)
        self._half_open_max = max(1, half_open_max_calls)
        self._clock = clock
        self._lock = threading.Lock()
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probes = 0

    @classmethod
    def from_config(cls, config: LeanLLMConfig) -> CircuitBreaker:
        return cls(**breaker_parameters(config))

    def _refresh(self) -> None:
        # Caller holds the lock.
        if self._state == "open" and self._clock() - self._opened_at >= self._recovery_s:
            self._state = "half_open"
            self._probes = 0

    @property
    def state(self) -> BreakerState:
        with self._lock:
            self._refresh()
            return self._state

    def allow(self) -> bool:
        """Whether a call may go to the backend now (in ``half_open`` this takes one probe slot)."""
        with self._lock:
            self._refresh()
            if self._state == "closed":
                return True
            if self._state == "half_open" and self._probes < self._half_open_max:
                self._probes += 1
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._state = "closed"
            self._failures = 0
            self._probes = 0

    def record_failure(self) -> None:
        with self._lock:
            self._refresh()
            if self._state == "half_open":
                self._open()
                return
            self._failures += 1
            if self._state == "closed" and self._failures >= self._threshold:
                self._open()

    def _open(self) -> None:
        self._state = "open"
        self._opened_at = self._clock()
        self._probes = 0
        _logger.warning("leanllm-otel: circuit opened after %d consecutive failures", self._failures)


class DropCounter:
    """Thread-safe count of dropped events by reason; every ``add`` notifies the registered callbacks."""

    def __init__(self, callbacks: Iterable[Callable[[int, str], None]] = ()) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[int, str], None]] = list(callbacks)
        self._by_reason: dict[str, int] = {}
        self._total = 0

    def add_callback(self, cb: Callable[[int, str], None]) -> None:
        with self._lock:
            self._callbacks.append(cb)

    def remove_callback(self, cb: Callable[[int, str], None]) -> None:
        """Stop notifying ``cb`` (no error if it was not registered)."""
        with self._lock:
            self._callbacks = [item for item in self._callbacks if item is not cb]

    def add(self, count: int, reason: str) -> None:
        if count <= 0:
            return
        with self._lock:
            self._total += count
            self._by_reason[reason] = self._by_reason.get(reason, 0) + count
            callbacks = tuple(self._callbacks)
        for cb in callbacks:
            try:
                cb(count, reason)
            except Exception:
                _logger.exception("leanllm-otel: on_dropped_events callback raised")

    @property
    def total(self) -> int:
        with self._lock:
            return self._total

    def by_reason(self) -> dict[str, int]:
        with self._lock:
            return dict(self._by_reason)


class Delivery:
    """Sends one batch with retries, backoff, budget and circuit breaker; counts what it gives up on."""

    def __init__(
        self,
        name: str,
        policy: RetryPolicy,
        breaker: CircuitBreaker,
        drops: DropCounter,
        sleep_event: threading.Event | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self.breaker = breaker
        self.drops = drops
        self._stop = sleep_event if sleep_event is not None else threading.Event()
        self._clock: Callable[[], float] = time.monotonic

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        """Interrupt any backoff sleep; later failures are dropped at once instead of retried."""
        self._stop.set()

    def _drop(self, count: int, reason: str, detail: str) -> bool:
        _logger.warning("leanllm-otel %s: dropping %d event(s): %s (%s)", self.name, count, reason, detail)
        self.drops.add(count, reason)
        return False

    def send(self, attempt: Callable[[], None], count: int) -> bool:
        """Deliver one batch of ``count`` events via ``attempt``. True when delivered; never raises."""
        try:
            return self._send(attempt, count)
        except BaseException as exc:  # pragma: no cover - defensive: send must never raise
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return self._drop(count, "internal_error", repr(exc))

    def _send(self, attempt: Callable[[], None], count: int) -> bool:
        started = self._clock()
        failures = 0
        while True:
            if not self.breaker.allow():
                return self._drop(count, REASON_CIRCUIT_OPEN, "backend keeps failing")
            try:
                attempt()
            except PermanentError as exc:
                # The backend answered: it is alive, only this batch is unacceptable.
                self.breaker.record_success()
                return self._drop(count, exc.reason, "permanent error")
            except Exception as exc:
                self.breaker.record_failure()
                failures += 1
                reason = exc.reason if isinstance(exc, RetryableError) else repr(exc)
                retry_after = exc.retry_after_s if isinstance(exc, RetryableError) else None
                if failures >= self.policy.max_attempts:
                    return self._drop(count, REASON_RETRY_EXHAUSTED, f"{failures} attempts, last: {reason}")
                if self._stop.is_set():
                    return self._drop(count, REASON_SHUTDOWN, f"exporter closing, last: {reason}")
                delay = self.policy.backoff_s(failures)
                if retry_after is not None:
                    delay = max(delay, retry_after)
                if self._clock() - started + delay > self.policy.total_budget_s:
                    return self._drop(count, REASON_RETRY_EXHAUSTED, f"retry budget spent, last: {reason}")
                _logger.debug(
                    "leanllm-otel %s: attempt %d failed (%s); retry in %.3fs", self.name, failures, reason, delay
                )
                if self._stop.wait(delay):
                    return self._drop(count, REASON_SHUTDOWN, f"exporter closing, last: {reason}")
            else:
                self.breaker.record_success()
                return True
