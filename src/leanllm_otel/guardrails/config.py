"""Building a :class:`Guard` from ``LeanLLMConfig`` and ``LEANLLM_*`` variables.

``LEANLLM_ENFORCEMENT`` is a ``LeanLLMConfig`` field (``enforcement_policy``); the other variables are read here
until they become config fields:

=====================================  ==========================================================================
variable                               meaning
=====================================  ==========================================================================
``LEANLLM_ENFORCEMENT``                preset (``off``, ``standard``, ``strict``) or JSON ``EnforcementPolicy``
``LEANLLM_BUDGETS``                    JSON list of budgets: ``[{"name": "team-a", "limit_usd": 50,
                                       "window": "24h", "scope": {"team": "a"}, "action": "block"}]``
``LEANLLM_BUDGETS_SHARED``             ``true``: keep budget state in ``LEANLLM_DATABASE_URL`` (all processes)
``LEANLLM_ALERT_WEBHOOK_URL``          generic JSON webhook
``LEANLLM_ALERT_SLACK_URL``            Slack incoming webhook
``LEANLLM_ALERT_PAGERDUTY_ROUTING_KEY``  PagerDuty Events API v2 routing key (``..._PAGERDUTY_URL`` overrides the
                                       endpoint)
``LEANLLM_ALERT_MIN_SEVERITY``         low / medium / high / critical (default ``medium``)
``LEANLLM_ALERT_COOLDOWN_S``           seconds between two alerts with the same key (default 300)
``LEANLLM_ALERT_MAX_PER_MINUTE``       storm limit across all keys (default 30)
``LEANLLM_ANOMALY_DETECTION``          ``true`` to score calls against per-model baselines
``LEANLLM_ANOMALY_SIGMA``              deviations that make an anomaly (default 3.0)
``LEANLLM_ANOMALY_MIN_SAMPLES``        calls before a baseline is trusted (default 20)
=====================================  ==========================================================================

Alert delivery uses the exporters' retry and circuit-breaker settings (``LEANLLM_RETRY_*``,
``LEANLLM_CIRCUIT_BREAKER_*``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from leanllm_otel.config import parse_bool
from leanllm_otel.exporters.delivery import RetryPolicy
from leanllm_otel.guardrails.alerts import (
    AlertDispatcher,
    AlertSink,
    BreakerSettings,
    PagerDutySink,
    SlackSink,
    WebhookSink,
)
from leanllm_otel.guardrails.anomaly import AnomalyConfig, AnomalyDetector
from leanllm_otel.guardrails.budgets import Budget, BudgetLedger, BudgetManager, InMemoryLedger, SQLLedger
from leanllm_otel.guardrails.guard import Guard
from leanllm_otel.guardrails.policy import parse_policy, parse_severity

__all__ = ["guard_from_config"]


def guard_from_config(config: Any = None, environ: Mapping[str, str] | None = None) -> Guard | None:
    """The guard ``config`` and the environment ask for, or None when they ask for nothing (the default)."""
    env = os.environ if environ is None else environ
    if config is None:
        from leanllm_otel.config import LeanLLMConfig

        config = LeanLLMConfig.from_env()
    policy = parse_policy(getattr(config, "enforcement_policy", None) or env.get("LEANLLM_ENFORCEMENT"))

    budgets: BudgetManager | None = None
    raw = env.get("LEANLLM_BUDGETS", "").strip()
    ledger: BudgetLedger | None = None
    if raw:
        try:
            specs = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"LEANLLM_BUDGETS is not valid JSON ({exc.msg})") from None
        if not isinstance(specs, list):
            raise ValueError("LEANLLM_BUDGETS must be a JSON list of budget objects")
        url = getattr(config, "database_url", None)
        shared = parse_bool(env.get("LEANLLM_BUDGETS_SHARED", "false"))
        if shared and not url:
            raise ValueError("LEANLLM_BUDGETS_SHARED needs LEANLLM_DATABASE_URL")
        ledger = SQLLedger(url) if shared and url else InMemoryLedger()
        budgets = BudgetManager([Budget.from_mapping(spec) for spec in specs], ledger)

    sinks: list[AlertSink] = []
    if env.get("LEANLLM_ALERT_WEBHOOK_URL"):
        sinks.append(WebhookSink(env["LEANLLM_ALERT_WEBHOOK_URL"].strip()))
    if env.get("LEANLLM_ALERT_SLACK_URL"):
        sinks.append(SlackSink(env["LEANLLM_ALERT_SLACK_URL"].strip()))
    if env.get("LEANLLM_ALERT_PAGERDUTY_ROUTING_KEY"):
        pd_url = env.get("LEANLLM_ALERT_PAGERDUTY_URL", "").strip() or "https://events.pagerduty.com/v2/enqueue"
        sinks.append(PagerDutySink(env["LEANLLM_ALERT_PAGERDUTY_ROUTING_KEY"].strip(), url=pd_url))
    alerts: AlertDispatcher | None = None
    if sinks:
        alerts = AlertDispatcher(
            sinks,
            min_severity=parse_severity(env.get("LEANLLM_ALERT_MIN_SEVERITY", "medium")),
            cooldown_s=float(env.get("LEANLLM_ALERT_COOLDOWN_S", "300")),
            max_per_minute=float(env.get("LEANLLM_ALERT_MAX_PER_MINUTE", "30")),
            retry=RetryPolicy.from_config(config) if hasattr(config, "retry_max_attempts") else None,
            breaker=BreakerSettings.from_config(config)
            if hasattr(config, "circuit_breaker_failure_threshold")
            else None,
        )

    anomalies: AnomalyDetector | None = None
    if parse_bool(env.get("LEANLLM_ANOMALY_DETECTION", "false")):
        anomalies = AnomalyDetector(
            AnomalyConfig(
                sigma=float(env.get("LEANLLM_ANOMALY_SIGMA", "3.0")),
                min_samples=int(env.get("LEANLLM_ANOMALY_MIN_SAMPLES", "20")),
            )
        )

    if policy is None and budgets is None and alerts is None and anomalies is None:
        return None
    return Guard(policy=policy, budgets=budgets, alerts=alerts, anomalies=anomalies, events_ledger=ledger)
