"""Rolling per-model baselines and outliers: latency, cost, tokens, error rate.

Each baseline is an exponentially weighted mean and variance (``alpha`` ~ 2 / (window + 1), so ``window=100``
behaves like LLMTrace's 100-observation sliding window in O(1) memory). A call is scored against the baseline
*before* it is folded in; once ``min_samples`` calls have been seen, a value more than ``sigma`` deviations above the
mean is an anomaly (high side only: a cheap, fast call is not an incident). The deviation has a floor of
``relative_floor`` x mean so a perfectly flat baseline does not turn every wobble into an alert.

Error rate: a fast EWMA (about the last 10 calls) against the slow baseline rate; an ``error_rate_spike`` when the
fast rate exceeds the baseline by ``sigma`` binomial deviations and is at least ``min_error_rate``.

Baselines are kept per model and, with ``by_labels``, per (model, label=value). At most ``max_keys`` baselines
are kept (least recently used forgotten). Thread-safe.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Anomaly", "AnomalyConfig", "AnomalyDetector"]

METRIC_KINDS: Mapping[str, str] = {
    "latency_ms": "latency_spike",
    "cost_usd": "cost_spike",
    "total_tokens": "token_spike",
}


@dataclass(frozen=True)
class AnomalyConfig:
    sigma: float = 3.0
    min_samples: int = 20
    window: int = 100
    relative_floor: float = 0.1
    metrics: Sequence[str] = ("latency_ms", "cost_usd", "total_tokens")
    check_error_rate: bool = True
    min_error_rate: float = 0.3
    by_labels: Sequence[str] = ()
    max_keys: int = 1000

    def __post_init__(self) -> None:
        unknown = set(self.metrics) - set(METRIC_KINDS)
        if unknown:
            raise ValueError(f"unknown anomaly metrics {sorted(unknown)}; known: {sorted(METRIC_KINDS)}")
        if self.sigma <= 0 or self.min_samples < 2 or self.window < 2:
            raise ValueError("sigma must be > 0, min_samples >= 2, window >= 2")


@dataclass(frozen=True)
class Anomaly:
    kind: str  # latency_spike | cost_spike | token_spike | error_rate_spike
    key: str  # the baseline: "model=gpt-4o-mini" or "model=gpt-4o-mini,feature=search"
    value: float
    baseline: float
    score: float  # deviations above the baseline


class _Ewma:
    __slots__ = ("mean", "n", "var")

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.var = 0.0

    def update(self, x: float, alpha: float) -> None:
        self.n += 1
        if self.n == 1:
            self.mean = x
            return
        # Welford-style exponentially weighted update (West 1979); early on, a plain running mean.
        a = max(alpha, 1.0 / self.n)
        diff = x - self.mean
        incr = a * diff
        self.mean += incr
        self.var = (1 - a) * (self.var + diff * incr)


class _Baseline:
    __slots__ = ("errors_fast", "errors_slow", "metrics")

    def __init__(self) -> None:
        self.metrics: dict[str, _Ewma] = {}
        self.errors_slow = _Ewma()
        self.errors_fast = _Ewma()


class AnomalyDetector:
    """Scores calls against their baselines, then updates them."""

    def __init__(self, config: AnomalyConfig | None = None) -> None:
        self.config = config or AnomalyConfig()
        self._alpha = 2.0 / (self.config.window + 1)
        self._lock = threading.Lock()
        self._baselines: OrderedDict[str, _Baseline] = OrderedDict()

    def _keys(self, model: str, labels: Mapping[str, str]) -> list[str]:
        base = f"model={model}"
        keys = [base]
        for name in self.config.by_labels:
            value = labels.get(name)
            if value is not None:
                keys.append(f"{base},{name}={value}")
        return keys

    def _baseline(self, key: str) -> _Baseline:
        baseline = self._baselines.get(key)
        if baseline is None:
            baseline = self._baselines[key] = _Baseline()
            while len(self._baselines) > self.config.max_keys:
                self._baselines.popitem(last=False)
        else:
            self._baselines.move_to_end(key)
        return baseline

    def observe(
        self, model: str, labels: Mapping[str, str], metrics: Mapping[str, float | None], is_error: bool
    ) -> list[Anomaly]:
        """Score one call (its anomalies, possibly none) and fold it into its baselines."""
        cfg = self.config
        found: list[Anomaly] = []
        with self._lock:
            for key in self._keys(model, labels):
                baseline = self._baseline(key)
                if not is_error:  # a failed call's latency and tokens say nothing about the model's normal
                    for name in cfg.metrics:
                        value = metrics.get(name)
                        if value is None or not math.isfinite(value):
                            continue
                        ewma = baseline.metrics.get(name)
                        if ewma is None:
                            ewma = baseline.metrics[name] = _Ewma()
                        if ewma.n >= cfg.min_samples:
                            std = max(math.sqrt(max(ewma.var, 0.0)), cfg.relative_floor * abs(ewma.mean), 1e-12)
                            score = (value - ewma.mean) / std
                            if score > cfg.sigma:
                                found.append(Anomaly(METRIC_KINDS[name], key, value, ewma.mean, score))
                        ewma.update(value, self._alpha)
                if cfg.check_error_rate:
                    slow, fast = baseline.errors_slow, baseline.errors_fast
                    x = 1.0 if is_error else 0.0
                    fast.update(x, 0.2)
                    if is_error and slow.n >= cfg.min_samples:
                        p = min(max(slow.mean, 0.01), 0.99)
                        spread = math.sqrt(p * (1 - p) / 9.0)  # a 0.2-EWMA weighs about 9 calls
                        score = (fast.mean - p) / spread
                        if fast.mean >= cfg.min_error_rate and score > cfg.sigma:
                            found.append(Anomaly("error_rate_spike", key, fast.mean, slow.mean, score))
                    slow.update(x, self._alpha / 2)
        return found
