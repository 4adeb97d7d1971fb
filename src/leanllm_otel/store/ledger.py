"""The budget ledger: where the guardrails keep spend per budget key and time bucket.

:class:`InMemoryLedger` (per process) or :class:`SQLLedger` (the tables of :mod:`leanllm_otel.store.budget_tables`,
shared by every process that points at the same database). Spend is kept in buckets of ``bucket_s``; a window sums
the buckets that overlap it. The ledger knows a budget only as a :class:`BudgetWindow` (its limit, window, bucket
and reservation estimate); what a budget covers and what crossing it does is :mod:`leanllm_otel.guardrails.budgets`.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leanllm_otel.store.budget_tables import budget_spend, budget_state, guardrail_events

__all__ = ["PENDING_TTL_S", "BudgetLedger", "BudgetWindow", "InMemoryLedger", "SQLLedger"]

T = TypeVar("T")

# A reservation older than this is a call that will never settle (its process died): it is forgotten.
PENDING_TTL_S = 600.0


class BudgetWindow(Protocol):
    """What the ledger needs of a budget (``guardrails.budgets.Budget`` is one)."""

    @property
    def limit_usd(self) -> float: ...

    @property
    def window_s(self) -> float: ...

    @property
    def bucket_s(self) -> int: ...

    @property
    def estimate_usd(self) -> float: ...


class BudgetLedger(Protocol):
    """Where spend is kept. Each method is atomic per key."""

    def admit(self, key: str, budget: BudgetWindow, now: float) -> tuple[bool, float, float]:
        """``(admitted, spent_including_reservations, reserved)``."""
        ...

    def settle(self, key: str, budget: BudgetWindow, cost: float, reserved: float, now: float) -> tuple[float, float]:
        """Add ``cost``, drop ``reserved``; ``(spent_before, spent_after)`` over the window."""
        ...

    def spent(self, key: str, budget: BudgetWindow, now: float) -> float: ...

    def record_events(self, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def close(self) -> None: ...


def _window_floor(budget: BudgetWindow, now: float) -> float:
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
    def _sum(state: _KeyState, budget: BudgetWindow, now: float) -> float:
        floor = _window_floor(budget, now)
        for start in [b for b in state.buckets if b <= floor]:
            del state.buckets[start]
        return sum(state.buckets.values())

    def admit(self, key: str, budget: BudgetWindow, now: float) -> tuple[bool, float, float]:
        with self._lock:
            state = self._state(key, now)
            spent = self._sum(state, budget, now) + state.pending
            if spent >= budget.limit_usd:
                return False, spent, 0.0
            reserve = max(state.last_cost, budget.estimate_usd)
            state.pending += reserve
            return True, spent, reserve

    def settle(self, key: str, budget: BudgetWindow, cost: float, reserved: float, now: float) -> tuple[float, float]:
        with self._lock:
            state = self._state(key, now)
            before = self._sum(state, budget, now)
            bucket = int(now // budget.bucket_s) * budget.bucket_s
            state.buckets[bucket] = state.buckets.get(bucket, 0.0) + cost
            state.pending = max(0.0, state.pending - reserved)
            if cost > 0:
                state.last_cost = cost
            return before, before + cost

    def spent(self, key: str, budget: BudgetWindow, now: float) -> float:
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
    async def _window_sum(connection: AsyncConnection, key: str, budget: BudgetWindow, now: float) -> float:
        value = (
            await connection.execute(
                select(func.coalesce(func.sum(budget_spend.c.cost_usd), 0.0)).where(
                    and_(budget_spend.c.budget_key == key, budget_spend.c.bucket_start > _window_floor(budget, now))
                )
            )
        ).scalar_one()
        return float(value)

    def admit(self, key: str, budget: BudgetWindow, now: float) -> tuple[bool, float, float]:
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

    def settle(self, key: str, budget: BudgetWindow, cost: float, reserved: float, now: float) -> tuple[float, float]:
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

    def spent(self, key: str, budget: BudgetWindow, now: float) -> float:
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
