"""Spend caps per label over rolling windows, from LiteLLM's cost of completed calls.

A :class:`Budget` names a cap (``limit_usd`` over the last ``window`` seconds, rolling, not calendar-aligned) and
which calls it covers (``scope``: labels that must match; ``per``: a label whose every value gets its own cap, e.g.
``per="user_id"``). ``action="warn"`` records a warning (span attribute, alert, guardrail event) when spend crosses
the limit (and ``warn_at`` x limit); ``action="block"`` also refuses calls before they are sent, with
:class:`~leanllm_otel.guardrails.errors.LeanLLMBudgetExceeded`, once the window's spend reaches the limit.

State lives in a :class:`BudgetLedger` (:mod:`leanllm_otel.store.ledger`): :class:`InMemoryLedger` (per process,
the default) or :class:`SQLLedger` (the PostgreSQL/SQLite store, shared by every process that points at it). Spend
is kept in time buckets of ``window / 120`` (at least 1 s); a window sums the buckets that overlap it, so it may
count up to one bucket more than the exact rolling sum (conservative).

Admission of a ``block`` budget reserves an estimate (the last call's cost, at least ``estimate_usd``) under the
budget's lock, and the call is admitted only while ``spent + reserved < limit``; settlement replaces the reservation
with the real cost. So concurrent callers, in one process or many, overshoot a cap by at most about one call's cost.
Admission against a shared ledger is one short database transaction on the caller's thread (bounded by
``timeout_s``); a database failure admits the call (``fail_open``) and is logged.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from leanllm_otel.guardrails.errors import LeanLLMBudgetExceeded
from leanllm_otel.store.ledger import BudgetLedger, InMemoryLedger, SQLLedger

__all__ = [
    "Budget",
    "BudgetEvent",
    "BudgetLedger",
    "BudgetManager",
    "InMemoryLedger",
    "Reservation",
    "SQLLedger",
    "parse_window",
]

_logger = logging.getLogger(__name__)

WINDOWS: Mapping[str, float] = {"hourly": 3600.0, "daily": 86400.0, "weekly": 604800.0, "monthly": 2592000.0}
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw]?)\s*$")


def parse_window(value: float | str) -> float:
    """Seconds from a number, ``"90s"``/``"15m"``/``"1h"``/``"7d"``/``"2w"``, or hourly/daily/weekly/monthly."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        if text in WINDOWS:
            return WINDOWS[text]
        match = _DURATION.match(text)
        if match is None:
            raise ValueError(f"expected a window like 3600, '1h', '24h', '7d' or 'daily', got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a budget window must be positive, got {value!r}")
    return seconds


@dataclass(frozen=True)
class Budget:
    """One spend cap. See the module docstring."""

    name: str
    limit_usd: float
    window: float | str = "daily"
    action: Literal["warn", "block"] = "warn"
    scope: Mapping[str, str] = field(default_factory=dict)
    per: str | None = None
    warn_at: float | None = None
    estimate_usd: float = 0.0

    def __post_init__(self) -> None:
        if not self.name or ":" in self.name:
            raise ValueError(f"budget name must be non-empty and without ':', got {self.name!r}")
        if not self.limit_usd > 0:
            raise ValueError(f"budget {self.name!r}: limit_usd must be > 0")
        if self.action not in ("warn", "block"):
            raise ValueError(f"budget {self.name!r}: action must be 'warn' or 'block'")
        if self.warn_at is not None and not 0 < self.warn_at < 1:
            raise ValueError(f"budget {self.name!r}: warn_at is a fraction of the limit, 0 < warn_at < 1")
        parse_window(self.window)

    @property
    def window_s(self) -> float:
        return parse_window(self.window)

    @property
    def bucket_s(self) -> int:
        return max(1, int(self.window_s // 120))

    def key_for(self, labels: Mapping[str, str]) -> str | None:
        """The ledger key of the cap that covers a call with these labels, or None when it is not covered."""
        for name, value in self.scope.items():
            if labels.get(name) != value:
                return None
        if self.per is None:
            return self.name
        per_value = labels.get(self.per)
        return None if per_value is None else f"{self.name}:{self.per}={per_value}"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Budget:
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown budget setting(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)


@dataclass(frozen=True)
class BudgetEvent:
    """``warn`` (spend crossed ``warn_at`` or a warn budget's limit), ``exceeded`` (crossed the limit) or
    ``blocked`` (a call was refused)."""

    kind: Literal["warn", "exceeded", "blocked"]
    budget: str
    key: str
    spent_usd: float
    limit_usd: float
    window_s: float
    action: str


@dataclass(frozen=True)
class Reservation:
    budget: Budget
    key: str
    amount_usd: float


class BudgetManager:
    """Applies a set of budgets to calls, against one ledger."""

    def __init__(
        self,
        budgets: Sequence[Budget],
        ledger: BudgetLedger | None = None,
        *,
        fail_open: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        names = [b.name for b in budgets]
        if len(names) != len(set(names)):
            raise ValueError("budget names must be unique")
        self.budgets = tuple(budgets)
        self.ledger: BudgetLedger = ledger if ledger is not None else InMemoryLedger()
        self.fail_open = fail_open
        self._clock = clock
        self.blocking = any(b.action == "block" for b in self.budgets)

    def admit(self, labels: Mapping[str, str]) -> tuple[Reservation, ...]:
        """Reserve against every ``block`` budget covering the call; raise ``LeanLLMBudgetExceeded`` if one is spent.

        Called on the caller's thread before the request is sent.
        """
        reservations: list[Reservation] = []
        now = self._clock()
        for budget in self.budgets:
            if budget.action != "block":
                continue
            key = budget.key_for(labels)
            if key is None:
                continue
            try:
                admitted, spent, reserved = self.ledger.admit(key, budget, now)
            except Exception:
                _logger.warning("leanllm-otel: budget %r could not be checked", key, exc_info=True)
                if self.fail_open:
                    continue
                admitted, spent, reserved = False, math.nan, 0.0
            if not admitted:
                self.release(reservations)
                raise LeanLLMBudgetExceeded(budget.name, key, spent, budget.limit_usd, budget.window_s)
            reservations.append(Reservation(budget, key, reserved))
        return tuple(reservations)

    def release(self, reservations: Sequence[Reservation]) -> None:
        """Give back reservations of a call that was not sent."""
        now = self._clock()
        for r in reservations:
            if r.amount_usd > 0:
                try:
                    self.ledger.settle(r.key, r.budget, 0.0, r.amount_usd, now)
                except Exception:
                    _logger.warning("leanllm-otel: budget %r reservation not released", r.key, exc_info=True)

    def settle(
        self, labels: Mapping[str, str], cost: float, reservations: Sequence[Reservation] = ()
    ) -> list[BudgetEvent]:
        """Record a completed call's cost; the warnings and exhaustions it caused. Runs off the caller's thread."""
        reserved = {r.key: r.amount_usd for r in reservations}
        events: list[BudgetEvent] = []
        now = self._clock()
        for budget in self.budgets:
            key = budget.key_for(labels)
            if key is None:
                continue
            amount = reserved.get(key, 0.0)
            if cost <= 0 and amount <= 0:
                continue
            try:
                before, after = self.ledger.settle(key, budget, max(0.0, cost), amount, now)
            except Exception:
                _logger.warning("leanllm-otel: budget %r not updated", key, exc_info=True)
                continue
            limit = budget.limit_usd
            if budget.warn_at is not None and before < budget.warn_at * limit <= after:
                events.append(BudgetEvent("warn", budget.name, key, after, limit, budget.window_s, budget.action))
            if before < limit <= after:
                kind: Literal["warn", "exceeded"] = "warn" if budget.action == "warn" else "exceeded"
                events.append(BudgetEvent(kind, budget.name, key, after, limit, budget.window_s, budget.action))
        return events

    def spent(self, budget_name: str, labels: Mapping[str, str] | None = None) -> float:
        """The window's spend of one budget (for the call these labels describe)."""
        budget = next(b for b in self.budgets if b.name == budget_name)
        key = budget.key_for(labels or dict(budget.scope))
        return 0.0 if key is None else self.ledger.spent(key, budget, self._clock())


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
