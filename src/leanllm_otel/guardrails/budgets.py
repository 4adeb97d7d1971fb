"""Spend caps per label over rolling windows, from LiteLLM's cost of completed calls.

A :class:`Budget` names a cap (``limit_usd`` over the last ``window`` seconds, rolling, not calendar-aligned) and
which calls it covers (``scope``: labels that must match; ``per``: a label whose every value gets its own cap, e.g.
``per="user_id"``). ``action="warn"`` records a warning (span attribute, alert, guardrail event) when spend crosses
the limit (and ``warn_at`` x limit); ``action="block"`` also refuses calls before they are sent, with
:class:`~leanllm_otel.guardrails.errors.LeanLLMBudgetExceeded`, once the window's spend reaches the limit.

State lives in a :class:`BudgetLedger`: :class:`InMemoryLedger` (per process, the default) or :class:`SQLLedger`
(the PostgreSQL/SQLite store, shared by every process that points at it). Spend is kept in time buckets of
``window / 120`` (at least 1 s); a window sums the buckets that overlap it, so it may count up to one bucket more
than the exact rolling sum (conservative).

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
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leanllm_otel.guardrails.errors import LeanLLMBudgetExceeded
from leanllm_otel.store.budget_tables import budget_spend, budget_state, guardrail_events

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
T = TypeVar("T")

WINDOWS: Mapping[str, float] = {"hourly": 3600.0, "daily": 86400.0, "weekly": 604800.0, "monthly": 2592000.0}
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw]?)\s*$")
# A reservation older than this is a call that will never settle (its process died): it is forgotten.
PENDING_TTL_S = 600.0


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


class BudgetLedger(Protocol):
    """Where spend is kept. Each method is atomic per key."""

    def admit(self, key: str, budget: Budget, now: float) -> tuple[bool, float, float]:
        """``(admitted, spent_including_reservations, reserved)``."""
        ...

    def settle(self, key: str, budget: Budget, cost: float, reserved: float, now: float) -> tuple[float, float]:
        """Add ``cost``, drop ``reserved``; ``(spent_before, spent_after)`` over the window."""
        ...

    def spent(self, key: str, budget: Budget, now: float) -> float: ...

    def record_events(self, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def close(self) -> None: ...


def _window_floor(budget: Budget, now: float) -> float:
    # Buckets [b, b + bucket) that overlap (now - window, now].
    return now - budget.window_s - budget.bucket_s


class _KeyState:
    __slots__ = ("buckets", "last_cost", "pending", "updated_at")

    def __init__(self, now: float) -> None:
        self.buckets: dict[int, float] = {}
        self.pending = 0.0
        self.last_cost = 0.0
        self.updated_at = now


class InMemoryLedger:
    """Per-process ledger (thread-safe). ``events`` keeps the last ``max_events`` guardrail events."""

    def __init__(self, max_events: int = 1000) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, _KeyState] = {}
        self._max_events = max_events
        self.events: list[dict[str, Any]] = []

    def _state(self, key: str, now: float) -> _KeyState:
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _KeyState(now)
        elif now - state.updated_at > PENDING_TTL_S:
            state.pending = 0.0
        state.updated_at = now
        return state

    @staticmethod
    def _sum(state: _KeyState, budget: Budget, now: float) -> float:
        floor = _window_floor(budget, now)
        for start in [b for b in state.buckets if b <= floor]:
            del state.buckets[start]
        return sum(state.buckets.values())

    def admit(self, key: str, budget: Budget, now: float) -> tuple[bool, float, float]:
        with self._lock:
            state = self._state(key, now)
            spent = self._sum(state, budget, now) + state.pending
            if spent >= budget.limit_usd:
                return False, spent, 0.0
            reserve = max(state.last_cost, budget.estimate_usd)
            state.pending += reserve
            return True, spent, reserve

    def settle(self, key: str, budget: Budget, cost: float, reserved: float, now: float) -> tuple[float, float]:
        with self._lock:
            state = self._state(key, now)
            before = self._sum(state, budget, now)
            bucket = int(now // budget.bucket_s) * budget.bucket_s
            state.buckets[bucket] = state.buckets.get(bucket, 0.0) + cost
            state.pending = max(0.0, state.pending - reserved)
            if cost > 0:
                state.last_cost = cost
            return before, before + cost

    def spent(self, key: str, budget: Budget, now: float) -> float:
        with self._lock:
            state = self._keys.get(key)
            return 0.0 if state is None else self._sum(state, budget, now)

    def record_events(self, rows: Sequence[Mapping[str, Any]]) -> None:
        with self._lock:
            self.events.extend(dict(row) for row in rows)
            del self.events[: max(0, len(self.events) - self._max_events)]

    def close(self) -> None:
        return None


def _dialect_insert(connection: AsyncConnection, table: Any) -> Any:
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


class SQLLedger:
    """Ledger in the SQL store, shared by every process using the same database.

    Each operation is one transaction that first takes the key's row lock (PostgreSQL row lock; SQLite's write
    lock), so concurrent admissions and settlements from any number of processes serialise per key and lose
    nothing. The schema comes from migration ``0003_budgets`` (run on first use unless ``auto_migrate=False``).
    """

    def __init__(self, database_url: str, *, timeout_s: float = 5.0, auto_migrate: bool = True) -> None:
        from leanllm_otel.store.engine import Database

        self._db = Database(database_url, name="leanllm-budgets")
        self.masked_url = self._db.masked_url
        self._timeout_s = timeout_s
        self._auto_migrate = auto_migrate
        self._migrated = False
        self._migrate_lock = threading.Lock()

    def _run(self, operation: Callable[[AsyncEngine], Awaitable[T]]) -> T:
        if self._auto_migrate and not self._migrated:
            with self._migrate_lock:
                if not self._migrated:
                    from leanllm_otel.store.engine import upgrade

                    self._db.run(upgrade, self._timeout_s * 6)
                    self._migrated = True
        return self._db.run(operation, self._timeout_s)

    @staticmethod
    async def _lock_row(connection: AsyncConnection, key: str, now: float) -> Any:
        await connection.execute(
            _dialect_insert(connection, budget_state)
            .values(budget_key=key, pending_usd=0.0, last_cost_usd=0.0, updated_at=now)
            .on_conflict_do_nothing(index_elements=["budget_key"])
        )
        return (
            await connection.execute(select(budget_state).where(budget_state.c.budget_key == key).with_for_update())
        ).one()

    @staticmethod
    async def _window_sum(connection: AsyncConnection, key: str, budget: Budget, now: float) -> float:
        value = (
            await connection.execute(
                select(func.coalesce(func.sum(budget_spend.c.cost_usd), 0.0)).where(
                    and_(budget_spend.c.budget_key == key, budget_spend.c.bucket_start > _window_floor(budget, now))
                )
            )
        ).scalar_one()
        return float(value)

    def admit(self, key: str, budget: Budget, now: float) -> tuple[bool, float, float]:
        async def op(engine: AsyncEngine) -> tuple[bool, float, float]:
            async with engine.begin() as connection:
                row = await self._lock_row(connection, key, now)
                pending = 0.0 if now - row.updated_at > PENDING_TTL_S else float(row.pending_usd)
                spent = await self._window_sum(connection, key, budget, now) + pending
                if spent >= budget.limit_usd:
                    return False, spent, 0.0
                reserve = max(float(row.last_cost_usd), budget.estimate_usd)
                await connection.execute(
                    budget_state.update()
                    .where(budget_state.c.budget_key == key)
                    .values(pending_usd=pending + reserve, updated_at=now)
                )
                return True, spent, reserve

        return self._run(op)

    def settle(self, key: str, budget: Budget, cost: float, reserved: float, now: float) -> tuple[float, float]:
        async def op(engine: AsyncEngine) -> tuple[float, float]:
            async with engine.begin() as connection:
                row = await self._lock_row(connection, key, now)
                before = await self._window_sum(connection, key, budget, now)
                bucket = int(now // budget.bucket_s) * budget.bucket_s
                stmt = _dialect_insert(connection, budget_spend).values(
                    budget_key=key, bucket_start=bucket, cost_usd=cost
                )
                await connection.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["budget_key", "bucket_start"],
                        set_={"cost_usd": budget_spend.c.cost_usd + stmt.excluded.cost_usd},
                    )
                )
                pending = 0.0 if now - row.updated_at > PENDING_TTL_S else float(row.pending_usd)
                await connection.execute(
                    budget_state.update()
                    .where(budget_state.c.budget_key == key)
                    .values(
                        pending_usd=max(0.0, pending - reserved),
                        last_cost_usd=cost if cost > 0 else row.last_cost_usd,
                        updated_at=now,
                    )
                )
                await connection.execute(
                    delete(budget_spend).where(
                        budget_spend.c.budget_key == key,
                        budget_spend.c.bucket_start <= _window_floor(budget, now),
                    )
                )
                return before, before + cost

        return self._run(op)

    def spent(self, key: str, budget: Budget, now: float) -> float:
        async def op(engine: AsyncEngine) -> float:
            async with engine.connect() as connection:
                return await self._window_sum(connection, key, budget, now)

        return self._run(op)

    def record_events(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return

        async def op(engine: AsyncEngine) -> None:
            async with engine.begin() as connection:
                await connection.execute(insert(guardrail_events), [dict(row) for row in rows])

        self._run(op)

    def close(self) -> None:
        self._db.close()


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
