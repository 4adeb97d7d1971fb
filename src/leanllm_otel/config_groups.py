"""The settings of :class:`~leanllm_otel.config.LeanLLMConfig`, one class per group, each field declared once.

A field says, in one :func:`setting` call, its environment variable, how the variable's text is parsed, its group,
default and doc; the checks on a group's fields sit with them. ``LeanLLMConfig`` inherits every group, so the
fields stay flat (``config.sampling_rate``, ``config.budgets``).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, SecretStr, field_validator

from leanllm_otel.config_text import Setting, check_database_url, check_http_url, check_pattern, parse_bool, setting
from leanllm_otel.redaction_mode import RedactionMode

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DeliverySettings",
    "GuardrailSettings",
    "PrivacySettings",
    "RuntimeSettings",
    "SamplingSettings",
    "Setting",
    "setting",
]

DEFAULT_BATCH_SIZE = 100
_DETECTOR_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _bool(value: object) -> object:
    # One vocabulary for booleans given as text, whether from the environment or a caller.
    return parse_bool(value) if isinstance(value, str) else value


def _secret(value: SecretStr | None) -> SecretStr | None:
    if value is None:
        return None
    stripped = value.get_secret_value().strip()
    if not stripped:
        raise ValueError("must not be empty; leave it unset (None) instead")
    return SecretStr(stripped)


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise ValueError("must not be empty; leave it unset (None) instead")
    return value


class DeliverySettings(BaseModel):
    """Where events go and how they get there: the store or service, the export queue, retries, the breaker."""

    database_url: str | None = setting(
        "LEANLLM_DATABASE_URL", "secret", "delivery", "sqlite:///path or postgresql://...; self-hosted SQL store."
    )
    leanllm_api_key: SecretStr | None = setting(
        "LEANLLM_API_KEY", "secret", "delivery", "Token for the LeanLLM service."
    )
    endpoint: str = setting(
        "LEANLLM_ENDPOINT", "str", "delivery", "LeanLLM service base URL.", "https://api.leanllm.dev"
    )
    enable_persistence: bool = setting(
        "LEANLLM_ENABLE_PERSISTENCE", "bool", "delivery", "Master switch for exporting to a store.", True
    )
    auto_migrate: bool = setting(
        "LEANLLM_AUTO_MIGRATE", "bool", "delivery", "Run pending schema migrations at store start.", True
    )
    queue_max_size: int = setting(
        "LEANLLM_QUEUE_MAX_SIZE", "int", "delivery", "Export queue capacity; overflow drops oldest.", 10_000, ge=1
    )
    batch_size: int = setting(
        "LEANLLM_BATCH_SIZE",
        "int",
        "delivery",
        "Spans per export batch (<= queue_max_size).",
        DEFAULT_BATCH_SIZE,
        ge=1,
    )
    flush_interval_ms: int = setting(
        "LEANLLM_FLUSH_INTERVAL_MS", "int", "delivery", "Force an export after this long.", 180_000, ge=1
    )
    export_timeout_ms: int = setting(
        "LEANLLM_EXPORT_TIMEOUT_MS", "int", "delivery", "Time limit for one export call.", 30_000, ge=1
    )
    shutdown_timeout_ms: int = setting(
        "LEANLLM_SHUTDOWN_TIMEOUT_MS", "int", "delivery", "Time limit for the flush at shutdown.", 5_000, ge=0
    )
    retry_max_attempts: int = setting(
        "LEANLLM_RETRY_MAX_ATTEMPTS", "int", "delivery", "Attempts per batch before it is dropped.", 5, ge=1
    )
    retry_initial_backoff_ms: int = setting(
        "LEANLLM_RETRY_INITIAL_BACKOFF_MS", "int", "delivery", "First backoff; doubles, +-20% jitter.", 500, ge=0
    )
    retry_total_budget_ms: int = setting(
        "LEANLLM_RETRY_TOTAL_BUDGET_MS", "int", "delivery", "Cap on total retry time per batch.", 30_000, ge=0
    )
    circuit_breaker_failure_threshold: int = setting(
        "LEANLLM_CIRCUIT_BREAKER_FAILURE_THRESHOLD", "int", "delivery", "Failures that open the circuit.", 5, ge=1
    )
    circuit_breaker_recovery_timeout_ms: int = setting(
        "LEANLLM_CIRCUIT_BREAKER_RECOVERY_TIMEOUT_MS", "int", "delivery", "Open -> half-open delay.", 30_000, ge=1
    )
    circuit_breaker_half_open_max_calls: int = setting(
        "LEANLLM_CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS", "int", "delivery", "Probe calls when half-open.", 1, ge=1
    )

    @field_validator(
        "enable_persistence",
        "auto_migrate",
        mode="before",
    )
    @classmethod
    def _delivery_bool_text(cls, value: object) -> object:
        return _bool(value)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise ValueError("must not be empty; leave it unset (None) to disable SQL persistence")
        check_database_url(value)
        return value

    @field_validator("leanllm_api_key")
    @classmethod
    def _delivery_secret_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        return _secret(value)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        value = value.strip()
        check_http_url(value)
        return value.rstrip("/")


class PrivacySettings(BaseModel):
    """What content is kept, and how: capture, redaction mode, the detectors, the size cap, normalisation."""

    capture_content: bool = setting(
        "LEANLLM_CAPTURE_CONTENT", "bool", "privacy", "Capture prompt and response content.", False
    )
    redaction_mode: RedactionMode | None = setting(
        "LEANLLM_REDACTION_MODE", "enum", "privacy", "Explicit redaction mode; None derives it from capture_content."
    )
    hash_key: SecretStr | None = setting(
        "LEANLLM_HASH_KEY", "secret", "privacy", "HMAC key for the hashed redaction mode."
    )
    security_scan: bool | None = setting(
        "LEANLLM_SECURITY_SCAN",
        "bool",
        "privacy",
        "PII/secret/injection findings (counts, never text) on every kept call and error, in every "
        "redaction mode; None = on, False = off.",
    )
    detector_extra_patterns: dict[str, str] = setting(
        "LEANLLM_DETECTOR_EXTRA_PATTERNS",
        "json_object",
        "privacy",
        "Extra detector patterns (RE2 syntax), name -> pattern.",
        default_factory=dict,
    )
    detector_allowlist: tuple[str, ...] = setting(
        "LEANLLM_DETECTOR_ALLOWLIST", "str_list", "privacy", "Literal values the detectors never flag.", ()
    )
    max_content_chars: int = setting(
        "LEANLLM_MAX_CONTENT_CHARS", "int", "privacy", "Size cap per content attribute.", 32_768, ge=256
    )
    auto_normalize: bool = setting(
        "LEANLLM_AUTO_NORMALIZE", "bool", "privacy", "Populate normalized input/output features.", False
    )

    @field_validator(
        "capture_content",
        "security_scan",
        "auto_normalize",
        mode="before",
    )
    @classmethod
    def _privacy_bool_text(cls, value: object) -> object:
        return _bool(value)

    @field_validator("redaction_mode", mode="before")
    @classmethod
    def _redaction_text(cls, value: object) -> object:
        # Lenient names for text ("FULL", " hashed ", "metadata_only"); members pass through.
        if not isinstance(value, str):
            return value
        try:
            return RedactionMode.parse(value)
        except ValueError:
            allowed = "metadata, hashed, redacted, full (metadata_only = metadata)"
            raise ValueError(f"expected one of {allowed}, got {value!r}") from None

    @field_validator("hash_key")
    @classmethod
    def _privacy_secret_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        return _secret(value)

    @field_validator("detector_extra_patterns")
    @classmethod
    def _extra_patterns(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in value.items():
            if not _DETECTOR_NAME.fullmatch(name):
                raise ValueError(f"detector name {name!r} must be a letter then letters, digits or _")
            if not pattern:
                raise ValueError(f"detector {name!r} has an empty pattern")
            check_pattern(pattern)
        return value

    @field_validator("detector_allowlist")
    @classmethod
    def _allowlist(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not item.strip() for item in value):
            raise ValueError("entries must not be empty")
        return value


class SamplingSettings(BaseModel):
    """Which successful calls are kept (errors always are)."""

    sampling_rate: float = setting(
        "LEANLLM_SAMPLING_RATE",
        "float",
        "sampling",
        "Share of successes kept; errors always.",
        1.0,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
    )


class RuntimeSettings(BaseModel):
    """What every event records, and developer aids."""

    environment: str | None = setting(
        "LEANLLM_ENVIRONMENT", "str", "runtime", "Recorded on every event as its environment."
    )
    debug: bool = setting("LEANLLM_DEBUG", "bool", "runtime", "DEBUG logging and a per-event stderr summary.", False)
    last_event_buffer: int = setting(
        "LEANLLM_LAST_EVENT_BUFFER", "int", "runtime", "Size of the last_event ring; 0 disables.", 32, ge=0
    )
    auto_chain: bool = setting(
        "LEANLLM_AUTO_CHAIN", "bool", "runtime", "Link each event to the previous one on the task.", False
    )
    service_name: str | None = setting(
        "LEANLLM_SERVICE_NAME", "str", "runtime", "service.name; falls back to OTEL_SERVICE_NAME."
    )

    @field_validator(
        "debug",
        "auto_chain",
        mode="before",
    )
    @classmethod
    def _runtime_bool_text(cls, value: object) -> object:
        return _bool(value)

    @field_validator("environment", "service_name")
    @classmethod
    def _runtime_optional_text(cls, value: str | None) -> str | None:
        return _text(value)


class GuardrailSettings(BaseModel):
    """Enforcement, budgets, alerts and anomaly detection; ``guardrails/config.py`` builds the Guard from them."""

    enforcement_policy: str | None = setting(
        "LEANLLM_ENFORCEMENT", "str", "guardrails", "Preset (off, standard, strict) or JSON EnforcementPolicy."
    )
    budgets: tuple[dict[str, Any], ...] = setting(
        "LEANLLM_BUDGETS",
        "json_list",
        "guardrails",
        'Budgets, JSON list: [{"name": "team-a", "limit_usd": 50, "window": "24h", "scope": {"team": "a"}}].',
        (),
    )
    budgets_shared: bool = setting(
        "LEANLLM_BUDGETS_SHARED", "bool", "guardrails", "Keep budget state in database_url (all processes).", False
    )
    alert_webhook_url: SecretStr | None = setting(
        "LEANLLM_ALERT_WEBHOOK_URL", "secret", "guardrails", "Generic JSON webhook for alerts."
    )
    alert_slack_url: SecretStr | None = setting(
        "LEANLLM_ALERT_SLACK_URL", "secret", "guardrails", "Slack incoming webhook for alerts."
    )
    alert_pagerduty_routing_key: SecretStr | None = setting(
        "LEANLLM_ALERT_PAGERDUTY_ROUTING_KEY", "secret", "guardrails", "PagerDuty Events API v2 routing key."
    )
    alert_pagerduty_url: str = setting(
        "LEANLLM_ALERT_PAGERDUTY_URL",
        "str",
        "guardrails",
        "PagerDuty Events API endpoint.",
        "https://events.pagerduty.com/v2/enqueue",
    )
    alert_min_severity: str = setting(
        "LEANLLM_ALERT_MIN_SEVERITY",
        "str",
        "guardrails",
        "Lowest alerted severity: low, medium, high, critical.",
        "medium",
    )
    alert_cooldown_s: float = setting(
        "LEANLLM_ALERT_COOLDOWN_S",
        "float",
        "guardrails",
        "Seconds between two alerts with the same key.",
        300.0,
        ge=0.0,
        allow_inf_nan=False,
    )
    alert_max_per_minute: float = setting(
        "LEANLLM_ALERT_MAX_PER_MINUTE",
        "float",
        "guardrails",
        "Alert storm limit across all keys.",
        30.0,
        gt=0.0,
        allow_inf_nan=False,
    )
    anomaly_detection: bool = setting(
        "LEANLLM_ANOMALY_DETECTION", "bool", "guardrails", "Score calls against per-model baselines.", False
    )
    anomaly_sigma: float = setting(
        "LEANLLM_ANOMALY_SIGMA",
        "float",
        "guardrails",
        "Deviations that make an anomaly.",
        3.0,
        gt=0.0,
        allow_inf_nan=False,
    )
    anomaly_min_samples: int = setting(
        "LEANLLM_ANOMALY_MIN_SAMPLES", "int", "guardrails", "Calls before a baseline is trusted.", 20, ge=2
    )

    @field_validator(
        "budgets_shared",
        "anomaly_detection",
        mode="before",
    )
    @classmethod
    def _guardrail_bool_text(cls, value: object) -> object:
        return _bool(value)

    @field_validator("enforcement_policy")
    @classmethod
    def _guardrail_optional_text(cls, value: str | None) -> str | None:
        return _text(value)

    @field_validator("alert_webhook_url", "alert_slack_url", "alert_pagerduty_routing_key")
    @classmethod
    def _guardrail_secret_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        return _secret(value)

    @field_validator("alert_webhook_url", "alert_slack_url")
    @classmethod
    def _alert_url(cls, value: SecretStr | None) -> SecretStr | None:
        # The path of a webhook URL is its secret: the message never shows the value.
        if value is not None:
            try:
                check_http_url(value.get_secret_value())
            except ValueError:
                raise ValueError("expected an http:// or https:// URL with a host") from None
        return value

    @field_validator("alert_pagerduty_url")
    @classmethod
    def _pagerduty_url(cls, value: str) -> str:
        value = value.strip()
        check_http_url(value)
        return value

    @field_validator("alert_min_severity")
    @classmethod
    def _severity(cls, value: str) -> str:
        from leanllm_otel.processing.detection.catalog import Severity  # the detectors' scale

        name = value.strip().lower()
        if name.upper() not in Severity.__members__:
            raise ValueError(f"expected a severity (low, medium, high, critical), got {value!r}")
        return name

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, value: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        # Each budget's own settings are checked where budgets are built (guardrails.budgets.Budget), at start.
        if any(not isinstance(item, dict) for item in value):
            raise ValueError("expected a JSON list of budget objects")
        return value
