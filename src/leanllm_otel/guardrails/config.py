"""Building a :class:`Guard` from ``LeanLLMConfig``.

The guardrail settings are ``LeanLLMConfig`` fields of the ``guardrails`` group (declared, with their
``LEANLLM_*`` variables, in :mod:`leanllm_otel.config_groups`): ``enforcement_policy`` (``LEANLLM_ENFORCEMENT``),
``budgets`` and ``budgets_shared`` (``LEANLLM_BUDGETS*``), ``alert_*`` (``LEANLLM_ALERT_*``) and ``anomaly_*``
(``LEANLLM_ANOMALY_*``). Alert delivery uses the exporters' retry and circuit-breaker settings
(``LEANLLM_RETRY_*``, ``LEANLLM_CIRCUIT_BREAKER_*``).
"""

from __future__ import annotations

from collections.abc import Mapping

from leanllm_otel.config import LeanLLMConfig
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


def guard_from_config(config: LeanLLMConfig | None = None, environ: Mapping[str, str] | None = None) -> Guard | None:
    """The guard ``config`` asks for (``LeanLLMConfig.from_env(environ)`` when None), or None when it asks for
    nothing (the default)."""
    if config is None:
        config = LeanLLMConfig.from_env(environ)
    policy = parse_policy(config.enforcement_policy)

    budgets: BudgetManager | None = None
    ledger: BudgetLedger | None = None
    if config.budgets:
        url = config.database_url
        ledger = SQLLedger(url) if config.budgets_shared and url else InMemoryLedger()
        budgets = BudgetManager([Budget.from_mapping(spec) for spec in config.budgets], ledger)

    sinks: list[AlertSink] = []
    if config.alert_webhook_url is not None:
        sinks.append(WebhookSink(config.alert_webhook_url.get_secret_value()))
    if config.alert_slack_url is not None:
        sinks.append(SlackSink(config.alert_slack_url.get_secret_value()))
    if config.alert_pagerduty_routing_key is not None:
        routing_key = config.alert_pagerduty_routing_key.get_secret_value()
        sinks.append(PagerDutySink(routing_key, url=config.alert_pagerduty_url))
    alerts: AlertDispatcher | None = None
    if sinks:
        alerts = AlertDispatcher(
            sinks,
            min_severity=parse_severity(config.alert_min_severity),
            cooldown_s=config.alert_cooldown_s,
            max_per_minute=config.alert_max_per_minute,
            retry=RetryPolicy.from_config(config),
            breaker=BreakerSettings.from_config(config),
        )

    anomalies: AnomalyDetector | None = None
    if config.anomaly_detection:
        anomalies = AnomalyDetector(AnomalyConfig(sigma=config.anomaly_sigma, min_samples=config.anomaly_min_samples))

    if policy is None and budgets is None and alerts is None and anomalies is None:
        return None
    return Guard(policy=policy, budgets=budgets, alerts=alerts, anomalies=anomalies, events_ledger=ledger)
