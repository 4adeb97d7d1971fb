"""Opt-in operational guardrails, in process: enforcement, budgets, alerts, anomalies, streaming analysis.

Nothing here runs unless a :class:`Guard` is attached (``Guard(...).attach(instrumentor)``, or
:func:`guard_from_config` for the ``LEANLLM_*`` variables). See ``docs/guardrails.md``.

Imports are lazy so that ``leanllm_otel.guardrails.errors`` (used by the wrappers) costs nothing else.
"""

from __future__ import annotations

import importlib
from typing import Any

from leanllm_otel.guardrails.errors import LeanLLMBudgetExceeded, LeanLLMGuardrailError, LeanLLMPolicyViolation

__all__ = [
    "Alert",
    "AlertDispatcher",
    "AnomalyConfig",
    "AnomalyDetector",
    "Budget",
    "BudgetManager",
    "EnforcementPolicy",
    "Guard",
    "GuardExporter",
    "InMemoryLedger",
    "LeanLLMBudgetExceeded",
    "LeanLLMGuardrailError",
    "LeanLLMPolicyViolation",
    "PagerDutySink",
    "SQLLedger",
    "SlackSink",
    "WebhookSink",
    "guard_from_config",
    "use_enforcement",
]

_LAZY = {
    "Alert": "alerts",
    "AlertDispatcher": "alerts",
    "PagerDutySink": "alerts",
    "SlackSink": "alerts",
    "WebhookSink": "alerts",
    "AnomalyConfig": "anomaly",
    "AnomalyDetector": "anomaly",
    "Budget": "budgets",
    "BudgetManager": "budgets",
    "InMemoryLedger": "budgets",
    "SQLLedger": "budgets",
    "EnforcementPolicy": "policy",
    "use_enforcement": "policy",
    "Guard": "guard",
    "GuardExporter": "guard",
    "guard_from_config": "config",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
