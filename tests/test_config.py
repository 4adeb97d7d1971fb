"""LeanLLMConfig: defaults, every LEANLLM_* variable, validation errors, secrets never shown."""

from __future__ import annotations

import logging
import pickle
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from leanllm_otel.config import (
    ENV_VARS,
    OTEL_CAPTURE_CONTENT_ENV,
    ConfigError,
    LeanLLMConfig,
    RedactionMode,
    mask_url,
    parse_bool,
)

PASSWORD = "Sup3r-s3cret-pw"
API_KEY = "lllm_live_abcdef0123456789"

DEFAULTS: dict[str, Any] = {
    "database_url": None,
    "leanllm_api_key": None,
    "endpoint": "https://api.leanllm.dev",
    "enable_persistence": True,
    "auto_migrate": True,
    "queue_max_size": 10_000,
    "batch_size": 100,
    "flush_interval_ms": 180_000,
    "export_timeout_ms": 30_000,
    "shutdown_timeout_ms": 5_000,
    "retry_max_attempts": 5,
    "retry_initial_backoff_ms": 500,
    "retry_total_budget_ms": 30_000,
    "circuit_breaker_failure_threshold": 5,
    "circuit_breaker_recovery_timeout_ms": 30_000,
    "circuit_breaker_half_open_max_calls": 1,
    "capture_content": False,
    "redaction_mode": None,
    "hash_key": None,
    "security_scan": None,
    "detector_extra_patterns": {},
    "detector_allowlist": (),
    "max_content_chars": 32_768,
    "auto_normalize": False,
    "sampling_rate": 1.0,
    "environment": None,
    "debug": False,
    "last_event_buffer": 32,
    "auto_chain": False,
    "service_name": None,
    "enforcement_policy": None,
    "budgets": (),
    "budgets_shared": False,
    "alert_webhook_url": None,
    "alert_slack_url": None,
    "alert_pagerduty_routing_key": None,
    "alert_pagerduty_url": "https://events.pagerduty.com/v2/enqueue",
    "alert_min_severity": "medium",
    "alert_cooldown_s": 300.0,
    "alert_max_per_minute": 30.0,
    "anomaly_detection": False,
    "anomaly_sigma": 3.0,
    "anomaly_min_samples": 20,
}

# field -> (variable text, expected parsed value); each value differs from the default.
ENV_CASES: dict[str, tuple[str, Any]] = {
    "database_url": ("sqlite:///events.db", "sqlite:///events.db"),
    "leanllm_api_key": (API_KEY, API_KEY),
    "endpoint": ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
    "enable_persistence": ("false", False),
    "auto_migrate": ("0", False),
    "queue_max_size": ("2048", 2048),
    "batch_size": ("64", 64),
    "flush_interval_ms": ("1500", 1500),
    "export_timeout_ms": ("9000", 9000),
    "shutdown_timeout_ms": ("250", 250),
    "retry_max_attempts": ("3", 3),
    "retry_initial_backoff_ms": ("0", 0),
    "retry_total_budget_ms": ("12000", 12000),
    "circuit_breaker_failure_threshold": ("10", 10),
    "circuit_breaker_recovery_timeout_ms": ("60000", 60000),
    "circuit_breaker_half_open_max_calls": ("3", 3),
    "capture_content": ("yes", True),
    "redaction_mode": ("HASHED", RedactionMode.HASHED),
    "hash_key": ("k" * 32, "k" * 32),
    "security_scan": ("off", False),
    "detector_extra_patterns": ('{"TICKET": "TCK-[0-9]{6}"}', {"TICKET": "TCK-[0-9]{6}"}),
    "detector_allowlist": ("support@example.com, 555-0100", ("support@example.com", "555-0100")),
    "max_content_chars": ("4096", 4096),
    "auto_normalize": ("on", True),
    "sampling_rate": ("0.25", 0.25),
    "environment": (" staging ", "staging"),
    "debug": ("TRUE", True),
    "last_event_buffer": ("0", 0),
    "auto_chain": ("1", True),
    "service_name": ("checkout", "checkout"),
    "enforcement_policy": ("strict", "strict"),
    "budgets": ('[{"name": "team-a", "limit_usd": 50}]', ({"name": "team-a", "limit_usd": 50},)),
    "budgets_shared": ("true", True),
    "alert_webhook_url": ("https://hooks.example.com/x", "https://hooks.example.com/x"),
    "alert_slack_url": ("https://hooks.slack.com/services/T/B/x", "https://hooks.slack.com/services/T/B/x"),
    "alert_pagerduty_routing_key": ("R0UT1NGKEY", "R0UT1NGKEY"),
    "alert_pagerduty_url": ("http://127.0.0.1:9/v2/enqueue", "http://127.0.0.1:9/v2/enqueue"),
    "alert_min_severity": ("HIGH", "high"),
    "alert_cooldown_s": ("0", 0.0),
    "alert_max_per_minute": ("5", 5.0),
    "anomaly_detection": ("yes", True),
    "anomaly_sigma": ("2.5", 2.5),
    "anomaly_min_samples": ("50", 50),
}


def _plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


# --- the table itself -----------------------------------------------------------------------------------


def test_env_var_table_covers_every_field_once() -> None:
    assert set(ENV_VARS) == set(LeanLLMConfig.model_fields)
    assert len(set(ENV_VARS.values())) == len(ENV_VARS)
    assert ENV_VARS["database_url"] == "LEANLLM_DATABASE_URL"
    assert ENV_VARS["leanllm_api_key"] == "LEANLLM_API_KEY"
    assert ENV_VARS["enforcement_policy"] == "LEANLLM_ENFORCEMENT"
    assert ENV_VARS["circuit_breaker_half_open_max_calls"] == "LEANLLM_CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS"
    assert all(var.startswith("LEANLLM_") for var in ENV_VARS.values())
    with pytest.raises(TypeError):
        ENV_VARS["debug"] = "X"  # type: ignore[index]


def test_test_tables_cover_every_field() -> None:
    assert set(DEFAULTS) == set(LeanLLMConfig.model_fields)
    assert set(ENV_CASES) == set(LeanLLMConfig.model_fields)


# --- defaults -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", sorted(DEFAULTS))
def test_default(field: str) -> None:
    assert getattr(LeanLLMConfig(), field) == DEFAULTS[field]


def test_from_empty_environment_equals_defaults() -> None:
    assert LeanLLMConfig.from_env({}) == LeanLLMConfig()


def test_constructor_ignores_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEANLLM_DEBUG", "true")
    assert LeanLLMConfig().debug is False
    assert LeanLLMConfig.from_env().debug is True  # default environ is os.environ


# --- every variable parsed ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", sorted(ENV_CASES))
def test_each_env_var_is_parsed(field: str) -> None:
    text, expected = ENV_CASES[field]
    config = LeanLLMConfig.from_env({ENV_VARS[field]: text})
    assert _plain(getattr(config, field)) == expected
    assert expected != DEFAULTS[field]


def test_all_env_vars_at_once() -> None:
    environ = {ENV_VARS[f]: text for f, (text, _) in ENV_CASES.items() if f != "leanllm_api_key"}
    config = LeanLLMConfig.from_env(environ)
    for field, (_, expected) in ENV_CASES.items():
        if field != "leanllm_api_key":
            assert _plain(getattr(config, field)) == expected, field


def test_blank_variables_count_as_unset() -> None:
    environ = {var: "  " for var in ENV_VARS.values()}
    assert LeanLLMConfig.from_env(environ) == LeanLLMConfig()


def test_allowlist_accepts_json_list() -> None:
    config = LeanLLMConfig.from_env({"LEANLLM_DETECTOR_ALLOWLIST": '["a,b", "c"]'})
    assert config.detector_allowlist == ("a,b", "c")


def test_overrides_win_over_environment() -> None:
    environ = {"LEANLLM_SAMPLING_RATE": "0.5", "LEANLLM_DATABASE_URL": "sqlite:///a.db"}
    config = LeanLLMConfig.from_env(environ, sampling_rate=0.1, debug=True)
    assert config.sampling_rate == 0.1
    assert config.debug is True
    assert config.database_url == "sqlite:///a.db"
    # an explicit None clears what the environment set, so the service can be chosen instead
    switched = LeanLLMConfig.from_env(environ, database_url=None, leanllm_api_key=API_KEY)
    assert switched.database_url is None
    assert switched.persistence_target == "service"


def test_unknown_override_is_rejected_by_name() -> None:
    with pytest.raises(ConfigError, match="sampling_rat"):
        LeanLLMConfig.from_env({}, sampling_rat=0.5)


def test_unknown_leanllm_variable_warns_with_suggestion(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="leanllm_otel.config"):
        LeanLLMConfig.from_env({"LEANLLM_SAMPLING_RAT": "0.5"})
    assert "LEANLLM_SAMPLING_RAT" in caplog.text
    assert "did you mean LEANLLM_SAMPLING_RATE" in caplog.text


# --- booleans -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True), ("TRUE", True), (" True ", True), ("1", True), ("yes", True), ("Yes", True),
        ("on", True), ("ON", True),
        ("false", False), ("False", False), ("0", False), ("no", False), ("NO", False), ("off", False),
        ("\toff\n", False),
    ],
)  # fmt: skip
def test_boolean_forms(text: str, expected: bool) -> None:
    assert parse_bool(text) is expected
    assert LeanLLMConfig.from_env({"LEANLLM_CAPTURE_CONTENT": text}).capture_content is expected
    assert LeanLLMConfig(capture_content=text).capture_content is expected  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["maybe", "t", "y", "2", "enabled", "tru e"])
def test_bad_boolean_names_variable_and_field(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        LeanLLMConfig.from_env({"LEANLLM_CAPTURE_CONTENT": text})
    message = str(info.value)
    assert (
        f"LEANLLM_CAPTURE_CONTENT: expected a boolean (true/false/1/0/yes/no/on/off), got {text!r}" in message
    )
    assert "capture_content" in message
    assert info.value.problems[0][:2] == ("capture_content", "LEANLLM_CAPTURE_CONTENT")


@pytest.mark.parametrize(
    "field",
    [f for f, (_, v) in ENV_CASES.items() if isinstance(v, bool)],
)
def test_every_boolean_variable_rejects_garbage(field: str) -> None:
    with pytest.raises(ConfigError, match=rf"{ENV_VARS[field]}: expected a boolean.*field {field}"):
        LeanLLMConfig.from_env({ENV_VARS[field]: "maybe"})


def test_bad_boolean_in_constructor_names_field() -> None:
    with pytest.raises(ValidationError, match=r"(?s)debug.*expected a boolean"):
        LeanLLMConfig(debug="maybe")  # type: ignore[arg-type]


# --- numbers --------------------------------------------------------------------------------------------

INT_FIELDS = [f for f, (_, v) in ENV_CASES.items() if type(v) is int]


@pytest.mark.parametrize("field", INT_FIELDS)
@pytest.mark.parametrize("text", ["ten", "1.5", "0x10", "1e3"])
def test_integer_garbage_names_variable_and_field(field: str, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        LeanLLMConfig.from_env({ENV_VARS[field]: text})
    assert f"{ENV_VARS[field]}: expected an integer, got {text!r}" in str(info.value)
    assert f"field {field}" in str(info.value)


@pytest.mark.parametrize("field", INT_FIELDS)
def test_integer_below_minimum_names_variable_and_field(field: str) -> None:
    with pytest.raises(ConfigError) as info:
        LeanLLMConfig.from_env({ENV_VARS[field]: "-1"})
    assert ENV_VARS[field] in str(info.value)
    assert field in str(info.value)
    assert "greater than or equal" in str(info.value)


@pytest.mark.parametrize(
    ("field", "lowest"),
    [
        ("queue_max_size", 1), ("batch_size", 1), ("flush_interval_ms", 1), ("export_timeout_ms", 1),
        ("shutdown_timeout_ms", 0), ("retry_max_attempts", 1), ("retry_initial_backoff_ms", 0),
        ("retry_total_budget_ms", 0), ("circuit_breaker_failure_threshold", 1),
        ("circuit_breaker_recovery_timeout_ms", 1), ("circuit_breaker_half_open_max_calls", 1),
        ("max_content_chars", 256), ("last_event_buffer", 0),
    ],
)  # fmt: skip
def test_integer_minimums(field: str, lowest: int) -> None:
    assert getattr(LeanLLMConfig(**{field: lowest}), field) == lowest
    with pytest.raises(ValidationError) as info:
        LeanLLMConfig(**{field: lowest - 1})
    assert field in str(info.value)


@pytest.mark.parametrize("text", ["abc", "nan", "inf", "-inf", ""])
def test_sampling_rate_garbage(text: str) -> None:
    if not text:
        assert LeanLLMConfig.from_env({"LEANLLM_SAMPLING_RATE": text}).sampling_rate == 1.0
        return
    with pytest.raises(
        ConfigError, match=r"LEANLLM_SAMPLING_RATE: expected a (finite )?number.*sampling_rate"
    ):
        LeanLLMConfig.from_env({"LEANLLM_SAMPLING_RATE": text})


@pytest.mark.parametrize("value", [-0.01, 1.01, float("nan"), float("inf")])
def test_sampling_rate_range(value: float) -> None:
    with pytest.raises(ValidationError, match="sampling_rate"):
        LeanLLMConfig(sampling_rate=value)
    assert LeanLLMConfig(sampling_rate=0.0).sampling_rate == 0.0
    assert LeanLLMConfig(sampling_rate=1).sampling_rate == 1.0


def test_sampling_rate_out_of_range_from_env_shows_value() -> None:
    with pytest.raises(ConfigError) as info:
        LeanLLMConfig.from_env({"LEANLLM_SAMPLING_RATE": "1.5"})
    assert "LEANLLM_SAMPLING_RATE" in str(info.value)
    assert "sampling_rate" in str(info.value)
    assert "1.5" in str(info.value)


def test_batch_size_may_not_exceed_queue() -> None:
    assert LeanLLMConfig(queue_max_size=50, batch_size=50).batch_size == 50
    with pytest.raises(ValidationError) as info:
        LeanLLMConfig(queue_max_size=50, batch_size=51)
    for name in ("batch_size", "queue_max_size", "LEANLLM_BATCH_SIZE", "LEANLLM_QUEUE_MAX_SIZE"):
        assert name in str(info.value)
    with pytest.raises(ConfigError, match=r"LEANLLM_BATCH_SIZE.*LEANLLM_QUEUE_MAX_SIZE"):
        LeanLLMConfig.from_env({"LEANLLM_QUEUE_MAX_SIZE": "10", "LEANLLM_BATCH_SIZE": "20"})


def test_small_queue_shrinks_only_the_default_batch() -> None:
    assert LeanLLMConfig(queue_max_size=10).batch_size == 10
    assert LeanLLMConfig.from_env({"LEANLLM_QUEUE_MAX_SIZE": "10"}).batch_size == 10
    assert LeanLLMConfig(queue_max_size=500).batch_size == 100
    assert LeanLLMConfig(queue_max_size=10, batch_size=5).batch_size == 5


def test_all_problems_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        LeanLLMConfig.from_env({"LEANLLM_DEBUG": "maybe", "LEANLLM_BATCH_SIZE": "many"})
    assert {p[1] for p in info.value.problems} == {"LEANLLM_DEBUG", "LEANLLM_BATCH_SIZE"}


# --- JSON and list variables ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{not json", "invalid JSON"),
        ('["a", "b"]', "got JSON list"),
        ('{"TICKET": "(unclosed"}', "invalid RE2 pattern"),
        ('{"9bad": "x"}', "detector name '9bad'"),
        ('{"EMPTY": ""}', "empty pattern"),
        ('{"N": 5}', "string"),
    ],
)
def test_bad_extra_patterns(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        LeanLLMConfig.from_env({"LEANLLM_DETECTOR_EXTRA_PATTERNS": text})
    assert "LEANLLM_DETECTOR_EXTRA_PATTERNS" in str(info.value)
    assert "detector_extra_patterns" in str(info.value)
    assert needle in str(info.value)


def test_extra_patterns_reject_backtracking_only_syntax() -> None:
    # RE2 (what the detectors run) has no backreferences; Python `re` would accept this pattern
    with pytest.raises(ValidationError, match="detector_extra_patterns"):
        LeanLLMConfig(detector_extra_patterns={"DUP": r"(a)\1"})


@pytest.mark.parametrize("text", ['["a", 1]', '["ok", ""]', "[unclosed"])
def test_bad_allowlist(text: str) -> None:
    with pytest.raises(ConfigError, match=r"LEANLLM_DETECTOR_ALLOWLIST.*detector_allowlist"):
        LeanLLMConfig.from_env({"LEANLLM_DETECTOR_ALLOWLIST": text})


# --- URLs -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "async_url"),
    [
        ("sqlite:///events.db", "sqlite+aiosqlite:///events.db"),
        ("sqlite:////var/lib/leanllm/events.db", "sqlite+aiosqlite:////var/lib/leanllm/events.db"),
        ("sqlite:///:memory:", "sqlite+aiosqlite:///:memory:"),
        ("sqlite+aiosqlite:///e.db", "sqlite+aiosqlite:///e.db"),
        ("postgresql://u:p@db:5432/leanllm", "postgresql+asyncpg://u:p@db:5432/leanllm"),
        ("postgres://u:p@db/leanllm", "postgresql+asyncpg://u:p@db/leanllm"),
        ("postgresql+asyncpg://u@127.0.0.1/x", "postgresql+asyncpg://u@127.0.0.1/x"),
        ("postgresql://db1:5432,db2:5432/x", "postgresql+asyncpg://db1:5432,db2:5432/x"),
        ("postgresql:///x?host=/var/run/postgresql", "postgresql+asyncpg:///x?host=/var/run/postgresql"),
    ],
)
def test_database_url_accepted_and_converted(url: str, async_url: str) -> None:
    config = LeanLLMConfig(database_url=url)
    assert config.database_url == url
    assert config.sqlalchemy_async_url == async_url
    assert config.persistence_target == "sql"


@pytest.mark.parametrize(
    "url",
    [
        "events.db",
        "sqlite://",
        "sqlite://events.db",
        "sqlite:///",
        "mysql://u:p@h/db",
        "postgresql+psycopg2://u:p@h/db",
        "postgresql://",
        "postgresql:///db",
        "postgresql://u:p@h:port/db",
        "postgresql://u:p@h/my db",
        "",
        "   ",
    ],
)
def test_malformed_database_url_names_field(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        LeanLLMConfig(database_url=url)
    assert "database_url" in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://admin:{PASSWORD}@db:notaport/x",
        f"postgresql://admin:{PASSWORD}@/x",
        f"mysql://admin:{PASSWORD}@db/x",
        f"postgresql://admin:{PASSWORD}#frag@db/x",  # unescaped '#': urlsplit misparses the password
        f"postgresql://admin:pre@{PASSWORD}@db:bad/x",  # unescaped '@' inside the password
        f"postgresql://db:bad/x?password={PASSWORD}",
        f"postgresql://admin:{PASSWORD}@db/my x",
    ],
)
def test_password_never_in_url_error(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        LeanLLMConfig(database_url=url)
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in repr(info.value)
    assert "database_url" in str(info.value)
    with pytest.raises(ConfigError) as env_info:
        LeanLLMConfig.from_env({"LEANLLM_DATABASE_URL": url})
    assert PASSWORD not in str(env_info.value)
    assert "LEANLLM_DATABASE_URL" in str(env_info.value)
    assert env_info.value.__cause__ is None


def test_repr_and_str_mask_every_secret() -> None:
    config = LeanLLMConfig(
        database_url=f"postgresql://admin:{PASSWORD}@db:5432/x?sslpassword={PASSWORD}",
        hash_key="hmac-" + PASSWORD,
    )
    service = LeanLLMConfig(leanllm_api_key=API_KEY, endpoint=f"https://u:{PASSWORD}@svc.example")
    for text in (repr(config), str(config), repr(service), str(service), f"{config!r} {service}"):
        assert PASSWORD not in text
        assert API_KEY not in text
    assert "postgresql://admin:***@db:5432/x" in repr(config)
    assert config.masked_database_url == "postgresql://admin:***@db:5432/x?sslpassword=***"
    # the secret values stay reachable on purpose, for the exporters
    assert config.sqlalchemy_async_url is not None and PASSWORD in config.sqlalchemy_async_url
    assert service.leanllm_api_key is not None
    assert service.leanllm_api_key.get_secret_value() == API_KEY


def test_config_error_for_both_set_hides_secrets() -> None:
    environ = {"LEANLLM_DATABASE_URL": f"postgresql://a:{PASSWORD}@db/x", "LEANLLM_API_KEY": API_KEY}
    with pytest.raises(ConfigError) as info:
        LeanLLMConfig.from_env(environ)
    assert PASSWORD not in str(info.value)
    assert API_KEY not in str(info.value)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://u:p@w/x@h/db", "postgresql://u:***@h/db"),
        ("sqlite:///events.db", "sqlite:///events.db"),
        ("postgresql://h/db?user=u&password=pw&x=1", "postgresql://h/db?user=u&password=***&x=1"),
        ("not a url", "not a url"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    "endpoint", ["ftp://api.leanllm.dev", "api.leanllm.dev", "https://", "https://h:99999", "http://a b"]
)
def test_bad_endpoint_names_field_and_variable(endpoint: str) -> None:
    with pytest.raises(ValidationError, match="endpoint"):
        LeanLLMConfig(endpoint=endpoint)
    with pytest.raises(ConfigError, match=r"LEANLLM_ENDPOINT.*field endpoint"):
        LeanLLMConfig.from_env({"LEANLLM_ENDPOINT": endpoint})


def test_endpoint_keeps_path_without_trailing_slash() -> None:
    assert (
        LeanLLMConfig(endpoint="https://proxy.internal/leanllm/").endpoint == "https://proxy.internal/leanllm"
    )


# --- persistence mode -----------------------------------------------------------------------------------


def test_database_url_and_api_key_are_mutually_exclusive() -> None:
    with pytest.raises(ValueError) as info:
        LeanLLMConfig(database_url="sqlite:///e.db", leanllm_api_key=API_KEY)
    message = str(info.value)
    for name in ("LEANLLM_DATABASE_URL", "LEANLLM_API_KEY", "database_url", "leanllm_api_key"):
        assert name in message
    assert API_KEY not in message
    with pytest.raises(ConfigError, match=r"LEANLLM_DATABASE_URL.*LEANLLM_API_KEY"):
        LeanLLMConfig.from_env({"LEANLLM_DATABASE_URL": "sqlite:///e.db", "LEANLLM_API_KEY": API_KEY})


def test_persistence_target() -> None:
    assert LeanLLMConfig().persistence_target is None
    assert LeanLLMConfig(database_url="sqlite:///e.db").persistence_target == "sql"
    assert LeanLLMConfig(leanllm_api_key=API_KEY).persistence_target == "service"
    assert LeanLLMConfig(database_url="sqlite:///e.db", enable_persistence=False).persistence_target is None
    assert LeanLLMConfig(leanllm_api_key=API_KEY, enable_persistence=False).persistence_target is None
    assert LeanLLMConfig().sqlalchemy_async_url is None
    assert LeanLLMConfig().masked_database_url is None


@pytest.mark.parametrize("field", ["leanllm_api_key", "hash_key", "environment", "service_name"])
def test_blank_strings_rejected_in_constructor(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        LeanLLMConfig(**{field: "  "})


def test_secrets_are_trimmed() -> None:
    config = LeanLLMConfig(leanllm_api_key=f" {API_KEY}\n")
    assert config.leanllm_api_key is not None
    assert config.leanllm_api_key.get_secret_value() == API_KEY


# --- content capture and redaction ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SPAN_ONLY", True), ("span_and_event", True), ("true", True), ("True", True),
        ("NO_CONTENT", False), ("EVENT_ONLY", False), ("false", False), ("", False),
    ],
)  # fmt: skip
def test_otel_capture_variable(text: str, expected: bool) -> None:
    assert LeanLLMConfig.from_env({OTEL_CAPTURE_CONTENT_ENV: text}).capture_content is expected


def test_otel_capture_variable_unknown_value_warns_and_stays_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="leanllm_otel.config"):
        config = LeanLLMConfig.from_env({OTEL_CAPTURE_CONTENT_ENV: "EVERYTHING"})
    assert config.capture_content is False
    assert OTEL_CAPTURE_CONTENT_ENV in caplog.text


@pytest.mark.parametrize(
    ("leanllm", "otel", "expected"),
    [("false", "SPAN_ONLY", False), ("true", "NO_CONTENT", True), ("0", "true", False)],
)
def test_leanllm_capture_variable_wins_over_otel(leanllm: str, otel: str, expected: bool) -> None:
    environ = {"LEANLLM_CAPTURE_CONTENT": leanllm, OTEL_CAPTURE_CONTENT_ENV: otel}
    assert LeanLLMConfig.from_env(environ).capture_content is expected


def test_capture_override_wins_over_otel_variable() -> None:
    config = LeanLLMConfig.from_env({OTEL_CAPTURE_CONTENT_ENV: "SPAN_ONLY"}, capture_content=False)
    assert config.capture_content is False


def test_redaction_mode_enum_and_alias() -> None:
    assert [m.value for m in RedactionMode] == ["metadata", "hashed", "redacted", "full"]
    assert RedactionMode.METADATA_ONLY is RedactionMode.METADATA
    assert LeanLLMConfig(redaction_mode="metadata_only").redaction_mode is RedactionMode.METADATA  # type: ignore[arg-type]
    assert LeanLLMConfig(redaction_mode=" Redacted ").redaction_mode is RedactionMode.REDACTED  # type: ignore[arg-type]
    assert LeanLLMConfig(redaction_mode="full").redaction_mode is RedactionMode.FULL  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"(?s)redaction_mode.*'verbatim'"):
        LeanLLMConfig(redaction_mode="verbatim")  # type: ignore[arg-type]


def test_redaction_mode_is_the_shared_enum() -> None:
    from leanllm_otel import config, redaction_mode

    assert config.RedactionMode is redaction_mode.RedactionMode


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("metadata", RedactionMode.METADATA), ("METADATA_ONLY", RedactionMode.METADATA),
        ("hashed", RedactionMode.HASHED), ("Redacted", RedactionMode.REDACTED), ("FULL", RedactionMode.FULL),
    ],
)  # fmt: skip
def test_redaction_mode_from_env(text: str, mode: RedactionMode) -> None:
    assert LeanLLMConfig.from_env({"LEANLLM_REDACTION_MODE": text}).redaction_mode is mode


def test_bad_redaction_mode_names_variable_and_field() -> None:
    with pytest.raises(ConfigError) as info:
        LeanLLMConfig.from_env({"LEANLLM_REDACTION_MODE": "verbatim"})
    assert "LEANLLM_REDACTION_MODE" in str(info.value)
    assert "redaction_mode" in str(info.value)
    assert "'verbatim'" in str(info.value)


@pytest.mark.parametrize(
    ("capture", "explicit", "effective"),
    [
        (False, None, RedactionMode.METADATA),
        (True, None, RedactionMode.REDACTED),
        (True, RedactionMode.METADATA, RedactionMode.METADATA),
        (True, RedactionMode.METADATA_ONLY, RedactionMode.METADATA),
        (True, RedactionMode.FULL, RedactionMode.FULL),
        (True, RedactionMode.HASHED, RedactionMode.HASHED),
        (False, RedactionMode.FULL, RedactionMode.FULL),
        (False, RedactionMode.REDACTED, RedactionMode.REDACTED),
    ],
)
def test_effective_redaction_mode(
    capture: bool, explicit: RedactionMode | None, effective: RedactionMode
) -> None:
    config = LeanLLMConfig(capture_content=capture, redaction_mode=explicit)
    assert config.effective_redaction_mode is effective


def test_effective_redaction_mode_from_otel_capture() -> None:
    config = LeanLLMConfig.from_env({OTEL_CAPTURE_CONTENT_ENV: "SPAN_AND_EVENT"})
    assert config.effective_redaction_mode is RedactionMode.REDACTED


# --- model behaviour ------------------------------------------------------------------------------------


def test_frozen() -> None:
    config = LeanLLMConfig()
    with pytest.raises(ValidationError, match="frozen"):
        config.debug = True  # type: ignore[misc]
    assert config.model_copy(update={"debug": True}).debug is True
    assert config.debug is False


def test_unknown_field_is_rejected_by_name() -> None:
    with pytest.raises(ValidationError) as info:
        LeanLLMConfig(capture_contents=True)  # type: ignore[call-arg]
    assert "capture_contents" in str(info.value)
    assert "Extra inputs are not permitted" in str(info.value)


def test_config_error_is_value_error() -> None:
    assert issubclass(ConfigError, ValueError)
    assert issubclass(ValidationError, ValueError)


def test_round_trips_through_pickle_and_equality() -> None:
    config = LeanLLMConfig(database_url="sqlite:///e.db", sampling_rate=0.5, detector_allowlist=("x",))
    assert pickle.loads(pickle.dumps(config)) == config
    assert config != LeanLLMConfig(database_url="sqlite:///e.db")


def test_replace_validates() -> None:
    config = LeanLLMConfig(database_url="sqlite:///e.db", leanllm_api_key=None, sampling_rate=0.5)
    changed = config.replace(debug=True)
    assert (changed.debug, changed.sampling_rate, changed.database_url) == (True, 0.5, "sqlite:///e.db")
    with pytest.raises(ValidationError, match="sampling_rate"):
        config.replace(sampling_rate=2.0)
    with pytest.raises(ValidationError, match="LEANLLM_API_KEY"):
        config.replace(leanllm_api_key=API_KEY)
    assert config.replace(database_url=None, leanllm_api_key=API_KEY).persistence_target == "service"


# --- guardrail settings are configuration fields ------------------------------------------------------------

BUDGETS_JSON = '[{"name": "team-a", "limit_usd": 50, "window": "24h", "scope": {"team": "a"}, "action": "block"}]'


def test_guardrail_variables_are_known_settings(caplog: pytest.LogCaptureFixture) -> None:
    environ = {
        "LEANLLM_BUDGETS": BUDGETS_JSON,
        "LEANLLM_ALERT_COOLDOWN_S": "60",
        "LEANLLM_ANOMALY_DETECTION": "true",
        "LEANLLM_ALERT_PAGERDUTY_URL": "http://127.0.0.1:9/v2/enqueue",
    }
    with caplog.at_level(logging.WARNING, logger="leanllm_otel.config"):
        config = LeanLLMConfig.from_env(environ)
    assert "unknown environment variable" not in caplog.text
    assert config.budgets[0]["name"] == "team-a"
    assert config.alert_cooldown_s == 60.0
    assert config.anomaly_detection is True


def test_guard_is_built_from_the_config_fields() -> None:
    from leanllm_otel.guardrails.config import guard_from_config

    guard = guard_from_config(
        LeanLLMConfig.from_env({"LEANLLM_BUDGETS": BUDGETS_JSON, "LEANLLM_ANOMALY_DETECTION": "on"})
    )
    assert guard is not None
    assert guard.budgets is not None and [b.name for b in guard.budgets.budgets] == ["team-a"]
    assert guard.anomalies is not None
    assert guard_from_config(LeanLLMConfig()) is None


@pytest.mark.parametrize(
    ("var", "text", "field"),
    [
        ("LEANLLM_BUDGETS", "{not json", "budgets"),
        ("LEANLLM_BUDGETS", '{"name": "a"}', "budgets"),
        ("LEANLLM_ALERT_COOLDOWN_S", "soon", "alert_cooldown_s"),
        ("LEANLLM_ALERT_MIN_SEVERITY", "urgent", "alert_min_severity"),
        ("LEANLLM_ANOMALY_MIN_SAMPLES", "1", "anomaly_min_samples"),
    ],
)
def test_invalid_guardrail_variable_names_variable_and_field(var: str, text: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        LeanLLMConfig.from_env({var: text})
    assert var in str(info.value) and f"field {field}" in str(info.value)


def test_shared_budgets_need_a_database() -> None:
    with pytest.raises(ConfigError, match=r"LEANLLM_BUDGETS_SHARED.*LEANLLM_DATABASE_URL"):
        LeanLLMConfig.from_env({"LEANLLM_BUDGETS": BUDGETS_JSON, "LEANLLM_BUDGETS_SHARED": "true"})


def test_alert_webhook_urls_are_secrets() -> None:
    url = "https://hooks.slack.com/services/T000/B000/s3cr3tpath"
    config = LeanLLMConfig(alert_slack_url=url)
    assert "s3cr3tpath" not in repr(config)
    with pytest.raises(ValueError) as info:
        LeanLLMConfig(alert_webhook_url="ftp://x/s3cr3tpath")
    assert "s3cr3tpath" not in str(info.value)


def test_every_setting_is_declared_once_on_its_field() -> None:
    from leanllm_otel.config import SETTINGS

    assert set(SETTINGS) == set(LeanLLMConfig.model_fields)
    for name, spec in SETTINGS.items():
        assert spec.field == name and spec.env == ENV_VARS[name]
        assert spec.group in ("delivery", "privacy", "sampling", "runtime", "guardrails")
        assert spec.description == LeanLLMConfig.model_fields[name].description
    assert SETTINGS["budgets"].group == "guardrails" and SETTINGS["sampling_rate"].group == "sampling"


def test_readme_table_lists_every_variable() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    missing = [var for var in ENV_VARS.values() if f"| `{var}` |" not in readme]
    assert missing == []
