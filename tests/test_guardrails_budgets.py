"""Budgets: rolling windows, warn and block, per-label caps, shared state in SQL across processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import litellm
import pytest
from sqlalchemy import create_engine, func, select, text

from leanllm_otel import semconv as sc
from leanllm_otel.context import use_context
from leanllm_otel.guardrails import Budget, BudgetManager, Guard, InMemoryLedger, LeanLLMBudgetExceeded, SQLLedger
from leanllm_otel.guardrails.budgets import parse_window
from leanllm_otel.store.budget_tables import budget_spend


class Clock:
    def __init__(self, now: float = 1_000_003.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def guarded(make_instrumented: Callable[..., Any]) -> Iterator[Callable[..., tuple[Any, Guard]]]:
    guards: list[Guard] = []

    def make(budgets: BudgetManager) -> tuple[Any, Guard]:
        inst = make_instrumented()
        guard = Guard(budgets=budgets).attach(inst.instrumentor)
        guards.append(guard)
        return inst, guard

    yield make
    for guard in guards:
        guard.close()


def _chat(server: Any, **kwargs: Any) -> Any:
    return litellm.completion(model="openai/gpt-4o-mini", api_base=server.base_url, api_key="sk-test",
                              max_retries=0, messages=[{"role": "user", "content": "count my tokens please"}],
                              **kwargs)


def test_windows_parse() -> None:
    assert parse_window("hourly") == 3600 and parse_window("24h") == 86400 and parse_window("90s") == 90
    assert parse_window(7.5) == 7.5 and parse_window("2w") == 14 * 86400
    with pytest.raises(ValueError):
        parse_window("soon")
    with pytest.raises(ValueError):
        Budget("b", 0.0)


def test_rolling_window_is_not_calendar_aligned() -> None:
    clock = Clock()
    manager = BudgetManager([Budget("b", 10.0, window="1h")], clock=clock)
    manager.settle({}, 4.0)
    clock.now += 1800
    manager.settle({}, 5.0)
    assert manager.spent("b") == pytest.approx(9.0)
    # 3600 s after the first call (plus one 30 s bucket) it has left the window; the second has not.
    clock.now += 1800 + 31
    assert manager.spent("b") == pytest.approx(5.0)
    clock.now += 1800
    assert manager.spent("b") == pytest.approx(0.0)


def test_warn_events_at_soft_limit_and_limit_each_once() -> None:
    manager = BudgetManager([Budget("team", 1.0, window="1d", warn_at=0.5, scope={"team": "a"})])
    assert manager.settle({"team": "b"}, 5.0) == []  # another team: not covered
    assert manager.settle({"team": "a"}, 0.4) == []
    events = manager.settle({"team": "a"}, 0.2)
    assert [(e.kind, e.budget) for e in events] == [("warn", "team")]
    events = manager.settle({"team": "a"}, 0.5)
    assert [(e.kind, round(e.spent_usd, 6)) for e in events] == [("warn", 1.1)]
    assert manager.settle({"team": "a"}, 0.5) == []  # already past: no repeat


def test_block_budget_per_user_refuses_before_sending(guarded: Any, openai_server: Any) -> None:
    manager = BudgetManager([Budget("per-user", 1e-9, window="1h", action="block", per="user_id")])
    inst, guard = guarded(manager)
    with use_context(user_id="alice"):
        _chat(openai_server)
        assert guard.flush(5)
        with pytest.raises(LeanLLMBudgetExceeded) as info:
            _chat(openai_server)
    assert info.value.key == "per-user:user_id=alice" and info.value.spent_usd > info.value.limit_usd
    assert openai_server.request_count == 1
    with use_context(user_id="bob"):  # bob has his own cap
        _chat(openai_server)
    assert openai_server.request_count == 2
    blocked = [s for s in inst.llm_spans() if (s.attributes or {}).get(sc.LEANLLM_SECURITY_BLOCKED)]
    assert len(blocked) == 1
    assert blocked[0].attributes[sc.LEANLLM_BUDGET_EVENT] == "blocked:per-user"
    assert blocked[0].attributes[sc.LEANLLM_SECURITY_BLOCK_REASON] == "budget_exceeded"


def test_stream_cost_is_computed_from_usage_for_the_budget(guarded: Any, openai_server: Any) -> None:
    manager = BudgetManager([Budget("all", 100.0, window="1h")])
    inst, guard = guarded(manager)
    for _ in _chat(openai_server, stream=True, stream_options={"include_usage": True}):
        pass
    assert guard.flush(5)
    span = inst.one_llm_span()
    assert sc.GEN_AI_USAGE_INPUT_TOKENS in span.attributes
    expected = sum(litellm.cost_per_token(model="gpt-4o-mini", prompt_tokens=span.attributes[
        sc.GEN_AI_USAGE_INPUT_TOKENS], completion_tokens=span.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS]))
    assert expected > 0
    assert manager.spent("all") == pytest.approx(expected)


def test_in_memory_ledger_loses_nothing_under_threads() -> None:
    manager = BudgetManager([Budget("b", 1e9, window="1h")], InMemoryLedger())

    def work() -> None:
        for _ in range(500):
            manager.settle({}, 0.001)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert manager.spent("b") == pytest.approx(4.0)


def test_sql_ledger_on_sqlite_admits_settles_and_records_events(sqlite_url: str) -> None:
    ledger = SQLLedger(sqlite_url)
    try:
        budget = Budget("b", 1.0, window="1h", action="block", estimate_usd=0.3)
        now = time.time()
        assert ledger.admit("b", budget, now) == (True, 0.0, 0.3)
        # Reservations count: admitted while spent + reserved < limit (0.3, 0.6, 0.9), refused at 1.2.
        assert all(ledger.admit("b", budget, now)[0] for _ in range(3))
        admitted, spent, _ = ledger.admit("b", budget, now)
        assert not admitted and spent == pytest.approx(1.2)
        assert ledger.settle("b", budget, 0.25, 0.3, now) == (0.0, 0.25)
        assert ledger.spent("b", budget, now) == pytest.approx(0.25)
        ledger.record_events([{"timestamp": __import__("datetime").datetime.now(), "kind": "anomaly",
                               "name": "latency_spike", "details": {"score": 4.2}}])
    finally:
        ledger.close()
    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.execute(text("select kind, name from leanllm_guardrail_events")).all() == [
            ("anomaly", "latency_spike")
        ]
    engine.dispose()


_CHILD = r"""
import os, sys, time
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
import litellm
from opentelemetry.sdk.trace import TracerProvider
from leanllm_otel.instrumentation.instrumentor import LeanLLMInstrumentor
from leanllm_otel.settings import TelemetrySettings
from leanllm_otel.guardrails import Budget, BudgetManager, Guard, LeanLLMBudgetExceeded, SQLLedger

base_url, db_url, limit, start_at, estimate = (sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]),
                                               float(sys.argv[5]))
instrumentor = LeanLLMInstrumentor()
instrumentor.instrument(tracer_provider=TracerProvider(), settings=TelemetrySettings())
# A typical call's cost as the estimate: the calls both processes make before either settled one reserve it.
manager = BudgetManager([Budget("shared", limit, window="1h", action="block", estimate_usd=estimate)],
                        SQLLedger(db_url))
guard = Guard(budgets=manager).attach(instrumentor)
while time.time() < start_at:
    time.sleep(0.005)
calls = 0
blocked = False
for _ in range(400):
    try:
        litellm.completion(model="openai/gpt-4o-mini", api_base=base_url, api_key="sk-test", max_retries=0,
                           messages=[{"role": "user", "content": "count my tokens please"}])
        calls += 1
    except LeanLLMBudgetExceeded:
        blocked = True
        break
guard.flush(30)
guard.close()
instrumentor.uninstrument()
print(calls, blocked, flush=True)
os._exit(0)
"""


def test_budget_shared_by_two_processes_holds_within_one_call(postgres_url: str, openai_server: Any) -> None:
    # One call's cost, as LiteLLM prices the mock server's answer.
    response = _chat(openai_server)
    one_call = float(litellm.completion_cost(completion_response=response))
    assert one_call > 0
    limit = one_call * 12.5
    SQLLedger(postgres_url).close()
    start_at = time.time() + 3.0
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    children = [
        subprocess.Popen([sys.executable, "-c", _CHILD, openai_server.base_url, postgres_url, repr(limit),
                          repr(start_at), repr(one_call)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err[-2000:]
        calls, blocked = out.split()
        results.append((int(calls), blocked == "True"))
    assert all(blocked for _, blocked in results), results
    assert all(calls > 0 for calls, _ in results), results  # both really competed for the budget
    ledger = SQLLedger(postgres_url)
    try:
        spent = ledger.spent("shared", Budget("shared", limit, window="1h"), time.time())
    finally:
        ledger.close()
    total_calls = sum(calls for calls, _ in results)
    assert spent == pytest.approx(total_calls * one_call, rel=1e-6)
    assert limit <= spent <= limit + one_call + 1e-12, (spent, limit, one_call, results)


def test_sql_spend_table_sums_buckets(sqlite_url: str) -> None:
    ledger = SQLLedger(sqlite_url)
    budget = Budget("b", 10.0, window=240)  # 2 s buckets
    try:
        now = 1_000_000.0
        for i in range(10):
            ledger.settle("b", budget, 0.5, 0.0, now + i)
        assert ledger.spent("b", budget, now + 10) == pytest.approx(5.0)
        assert ledger.spent("b", budget, now + 500) == pytest.approx(0.0)
    finally:
        ledger.close()
    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(budget_spend)).scalar_one() == 5
    engine.dispose()
