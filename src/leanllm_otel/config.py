"""``LeanLLMConfig``: every leanllm-otel setting, validated, from arguments or ``LEANLLM_*`` variables.

Two ways to build one::

    LeanLLMConfig(database_url="sqlite:///events.db", capture_content=True)   # explicit
    LeanLLMConfig.from_env()                                                   # LEANLLM_* environment

The constructor never reads the environment; ``from_env()`` does, and keyword overrides passed to it win over
the environment. ``ENV_VARS`` maps every field to its variable (the README table is generated from it).

Secrets (``leanllm_api_key``, ``hash_key``, the password in ``database_url``) never appear in ``repr()``,
``str()`` or in the text of any validation error this module raises.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from leanllm_otel.redaction_mode import RedactionMode
from leanllm_otel.sensitive import is_secret_name, mask_url

__all__ = [
    "ENV_VARS",
    "OTEL_CAPTURE_CONTENT_ENV",
    "ConfigError",
    "LeanLLMConfig",
    "RedactionMode",
    "mask_url",
    "parse_bool",
]

_logger = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A setting read by :meth:`LeanLLMConfig.from_env` is invalid.

    The message names the environment variable (when the value came from one) and the field. ``problems``
    holds one ``(field, env_var_or_None, message)`` tuple per invalid setting.
    """

    def __init__(self, message: str, problems: tuple[tuple[str, str | None, str], ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


# Variable names the GenAI instrumentations of opentelemetry-python-contrib read for content capture.
OTEL_CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_OTEL_CAPTURE_ON = frozenset({"span_only", "span_and_event", "true"})
_OTEL_CAPTURE_OFF = frozenset({"no_content", "event_only", "false"})

_Kind = Literal["str", "secret", "bool", "int", "float", "json_object", "str_list", "enum"]

# field name -> (environment variable, how the variable's text is parsed)
_SPEC: dict[str, tuple[str, _Kind]] = {
    # persistence
    "database_url": ("LEANLLM_DATABASE_URL", "secret"),
    "leanllm_api_key": ("LEANLLM_API_KEY", "secret"),
    "endpoint": ("LEANLLM_ENDPOINT", "str"),
    "enable_persistence": ("LEANLLM_ENABLE_PERSISTENCE", "bool"),
    "auto_migrate": ("LEANLLM_AUTO_MIGRATE", "bool"),
    # worker / queue
    "queue_max_size": ("LEANLLM_QUEUE_MAX_SIZE", "int"),
    "batch_size": ("LEANLLM_BATCH_SIZE", "int"),
    "flush_interval_ms": ("LEANLLM_FLUSH_INTERVAL_MS", "int"),
    "export_timeout_ms": ("LEANLLM_EXPORT_TIMEOUT_MS", "int"),
    "shutdown_timeout_ms": ("LEANLLM_SHUTDOWN_TIMEOUT_MS", "int"),
    # resilient delivery
    "retry_max_attempts": ("LEANLLM_RETRY_MAX_ATTEMPTS", "int"),
    "retry_initial_backoff_ms": ("LEANLLM_RETRY_INITIAL_BACKOFF_MS", "int"),
    "retry_total_budget_ms": ("LEANLLM_RETRY_TOTAL_BUDGET_MS", "int"),
    "circuit_breaker_failure_threshold": ("LEANLLM_CIRCUIT_BREAKER_FAILURE_THRESHOLD", "int"),
    "circuit_breaker_recovery_timeout_ms": ("LEANLLM_CIRCUIT_BREAKER_RECOVERY_TIMEOUT_MS", "int"),
    "circuit_breaker_half_open_max_calls": ("LEANLLM_CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS", "int"),
    # privacy
    "capture_content": ("LEANLLM_CAPTURE_CONTENT", "bool"),
    "redaction_mode": ("LEANLLM_REDACTION_MODE", "enum"),
    "hash_key": ("LEANLLM_HASH_KEY", "secret"),
    "security_scan": ("LEANLLM_SECURITY_SCAN", "bool"),
    "detector_extra_patterns": ("LEANLLM_DETECTOR_EXTRA_PATTERNS", "json_object"),
    "detector_allowlist": ("LEANLLM_DETECTOR_ALLOWLIST", "str_list"),
    "max_content_chars": ("LEANLLM_MAX_CONTENT_CHARS", "int"),
    # normalization
    "auto_normalize": ("LEANLLM_AUTO_NORMALIZE", "bool"),
    # runtime toggles
    "sampling_rate": ("LEANLLM_SAMPLING_RATE", "float"),
    "environment": ("LEANLLM_ENVIRONMENT", "str"),
    "debug": ("LEANLLM_DEBUG", "bool"),
    # DX helpers
    "last_event_buffer": ("LEANLLM_LAST_EVENT_BUFFER", "int"),
    "auto_chain": ("LEANLLM_AUTO_CHAIN", "bool"),
    # pipeline
    "service_name": ("LEANLLM_SERVICE_NAME", "str"),
    "enforcement_policy": ("LEANLLM_ENFORCEMENT", "str"),
}

ENV_VARS: Mapping[str, str] = MappingProxyType({field: env for field, (env, _) in _SPEC.items()})
"""Field name -> environment variable, for every ``LeanLLMConfig`` field."""

_FIELD_BY_ENV: Mapping[str, str] = MappingProxyType({env: field for field, env in ENV_VARS.items()})


# --- text parsing ----------------------------------------------------------------------------------------

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def parse_bool(text: str) -> bool:
    """Parse ``true/false/1/0/yes/no/on/off`` (any case, whitespace-trimmed); raise ValueError otherwise."""
    key = text.strip().lower()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise ValueError(f"expected a boolean (true/false/1/0/yes/no/on/off), got {text!r}")


def _parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None


def _parse_float(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {text!r}")
    return value


def _parse_json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"expected a JSON object of name -> pattern, got invalid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object of name -> pattern, got JSON {type(value).__name__}")
    return value


def _parse_str_list(text: str) -> list[Any]:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected a JSON list or comma-separated values ({exc.msg})") from None
        if not isinstance(value, list):
            raise ValueError("expected a JSON list or comma-separated values")
        return value
    return [item.strip() for item in stripped.split(",") if item.strip()]


_PARSERS: dict[_Kind, Callable[[str], Any]] = {
    "str": str.strip,
    "secret": str.strip,
    "enum": str.strip,
    "bool": parse_bool,
    "int": _parse_int,
    "float": _parse_float,
    "json_object": _parse_json_object,
    "str_list": _parse_str_list,
}


# --- URLs ------------------------------------------------------------------------------------------------

_SQLITE_SCHEMES = frozenset({"sqlite", "sqlite+aiosqlite"})
_POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+asyncpg", "postgres+asyncpg"})
_DB_URL_FORMS = "sqlite:///path.db, sqlite:///:memory:, or postgresql://user:password@host:5432/dbname"


def _check_database_url(url: str) -> None:
    """Raise ValueError (never containing the password) when ``url`` is not a supported database URL."""
    shown = mask_url(url)
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError(f"{shown!r} is not a database URL; expected {_DB_URL_FORMS}")
    if any(ch.isspace() for ch in url):
        raise ValueError(f"{shown!r} contains whitespace; expected {_DB_URL_FORMS}")
    if scheme in _SQLITE_SCHEMES:
        if not rest.startswith("/") or not rest[1:].split("?", 1)[0]:
            raise ValueError(
                f"{shown!r}: SQLite URLs take three slashes then a path: sqlite:///relative/path.db, "
                "sqlite:////absolute/path.db or sqlite:///:memory:"
            )
        return
    if scheme in _POSTGRES_SCHEMES:
        _check_postgres_authority(url, shown)
        return
    raise ValueError(
        f"{shown!r}: unsupported scheme {scheme!r}; use sqlite:// (aiosqlite) or postgresql:// (asyncpg), "
        "optionally spelled sqlite+aiosqlite:// or postgresql+asyncpg://"
    )


def _check_postgres_authority(url: str, shown: str) -> None:
    parts = urlsplit(url)
    hostport = parts.netloc.rpartition("@")[2]
    has_host_param = re.search(r"(?:^|&)host=[^&]+", parts.query) is not None
    if not hostport and not has_host_param:
        raise ValueError(f"{shown!r}: PostgreSQL URL has no host; expected {_DB_URL_FORMS}")
    if "," in hostport:  # libpq multi-host form host1:5432,host2:5432; asyncpg accepts it
        return
    try:
        parts.port  # noqa: B018 - urlsplit validates the port lazily, on access
    except ValueError:
        raise ValueError(
            f"{shown!r}: invalid port (percent-encode characters such as @ : / # ? in the password)"
        ) from None


def _check_http_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(ch.isspace() for ch in url):
        raise ValueError(f"expected an http:// or https:// URL with a host, got {mask_url(url)!r}")
    try:
        parts.port  # noqa: B018 - urlsplit validates the port lazily, on access
    except ValueError:
        raise ValueError(f"invalid port in {mask_url(url)!r}") from None


def _check_pattern(pattern: str) -> None:
    """Compile ``pattern`` with google-re2 (the engine the detectors use), when it is installed."""
    try:
        import re2
    except ImportError:  # pragma: no cover - google-re2 is a hard dependency
        re.compile(pattern)
        return
    try:
        re2.compile(pattern)
    except Exception as exc:  # re2 raises its own error type
        raise ValueError(f"invalid RE2 pattern {pattern!r}: {exc}") from None


_DEFAULT_BATCH_SIZE = 100
_DETECTOR_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


# --- the model -------------------------------------------------------------------------------------------


class LeanLLMConfig(BaseModel):
    """Every leanllm-otel setting. Immutable; unknown field names are rejected.

    Construct directly (the environment is not read) or with :meth:`from_env`. Invalid values raise
    ``pydantic.ValidationError`` (a ``ValueError``) naming the field; ``from_env`` raises :class:`ConfigError`
    naming the variable and the field.
    """

    # hide_input_in_errors: pydantic would otherwise print the raw input (a URL with its password, the
    # whole kwargs dict for model-level checks) into every ValidationError message.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    # persistence
    database_url: str | None = Field(
        default=None, description="sqlite:///path or postgresql://...; self-hosted SQL store."
    )
    leanllm_api_key: SecretStr | None = Field(default=None, description="Token for the LeanLLM service.")
    endpoint: str = Field(default="https://api.leanllm.dev", description="LeanLLM service base URL.")
    enable_persistence: bool = Field(default=True, description="Master switch for exporting to a store.")
    auto_migrate: bool = Field(default=True, description="Run pending schema migrations at store start.")
    # worker / queue
    queue_max_size: int = Field(default=10_000, ge=1, description="Export queue capacity; overflow drops oldest.")
    batch_size: int = Field(
        default=_DEFAULT_BATCH_SIZE, ge=1, description="Spans per export batch (<= queue_max_size)."
    )
    flush_interval_ms: int = Field(default=180_000, ge=1, description="Force an export after this long.")
    export_timeout_ms: int = Field(default=30_000, ge=1, description="Time limit for one export call.")
    shutdown_timeout_ms: int = Field(default=5_000, ge=0, description="Time limit for the flush at shutdown.")
    # resilient delivery
    retry_max_attempts: int = Field(default=5, ge=1, description="Attempts per batch before it is dropped.")
    retry_initial_backoff_ms: int = Field(default=500, ge=0, description="First backoff; doubles, +-20% jitter.")
    retry_total_budget_ms: int = Field(default=30_000, ge=0, description="Cap on total retry time per batch.")
    circuit_breaker_failure_threshold: int = Field(default=5, ge=1, description="Failures that open the circuit.")
    circuit_breaker_recovery_timeout_ms: int = Field(default=30_000, ge=1, description="Open -> half-open delay.")
    circuit_breaker_half_open_max_calls: int = Field(default=1, ge=1, description="Probe calls when half-open.")
    # privacy
    capture_content: bool = Field(default=False, description="Capture prompt and response content.")
    redaction_mode: RedactionMode | None = Field(
        default=None, description="Explicit redaction mode; None derives it from capture_content."
    )
    hash_key: SecretStr | None = Field(default=None, description="HMAC key for the hashed redaction mode.")
    security_scan: bool | None = Field(
        default=None,
        description="PII/secret/injection findings (counts, never text) on every kept call and error, in every "
        "redaction mode; None = on, False = off.",
    )
    detector_extra_patterns: dict[str, str] = Field(
        default_factory=dict, description="Extra detector patterns (RE2 syntax), name -> pattern."
    )
    detector_allowlist: tuple[str, ...] = Field(default=(), description="Literal values the detectors never flag.")
    max_content_chars: int = Field(default=32_768, ge=256, description="Size cap per content attribute.")
    # normalization
    auto_normalize: bool = Field(default=False, description="Populate normalized input/output features.")
    # runtime toggles
    sampling_rate: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="Share of successes kept; errors always.",
    )
    environment: str | None = Field(default=None, description="Recorded on every event as its environment.")
    debug: bool = Field(default=False, description="DEBUG logging and a per-event stderr summary.")
    # DX helpers
    last_event_buffer: int = Field(default=32, ge=0, description="Size of the last_event ring; 0 disables.")
    auto_chain: bool = Field(default=False, description="Link each event to the previous one on the task.")
    # pipeline
    service_name: str | None = Field(default=None, description="service.name; falls back to OTEL_SERVICE_NAME.")
    enforcement_policy: str | None = Field(default=None, description="Opt-in guardrail policy (reserved).")

    # --- field checks ----------------------------------------------------------------------------------

    @field_validator(
        "enable_persistence",
        "auto_migrate",
        "capture_content",
        "security_scan",
        "auto_normalize",
        "debug",
        "auto_chain",
        mode="before",
    )
    @classmethod
    def _bool_text(cls, value: object) -> object:
        # One vocabulary for booleans given as text, whether from the environment or a caller.
        return parse_bool(value) if isinstance(value, str) else value

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

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise ValueError("must not be empty; leave it unset (None) to disable SQL persistence")
        _check_database_url(value)
        return value

    @field_validator("leanllm_api_key", "hash_key")
    @classmethod
    def _secret_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        stripped = value.get_secret_value().strip()
        if not stripped:
            raise ValueError("must not be empty; leave it unset (None) instead")
        return SecretStr(stripped)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        value = value.strip()
        _check_http_url(value)
        return value.rstrip("/")

    @field_validator("environment", "service_name", "enforcement_policy")
    @classmethod
    def _optional_text(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise ValueError("must not be empty; leave it unset (None) instead")
        return value

    @field_validator("detector_extra_patterns")
    @classmethod
    def _extra_patterns(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in value.items():
            if not _DETECTOR_NAME.fullmatch(name):
                raise ValueError(f"detector name {name!r} must be a letter then letters, digits or _")
            if not pattern:
                raise ValueError(f"detector {name!r} has an empty pattern")
            _check_pattern(pattern)
        return value

    @field_validator("detector_allowlist")
    @classmethod
    def _allowlist(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not item.strip() for item in value):
            raise ValueError("entries must not be empty")
        return value

    @model_validator(mode="before")
    @classmethod
    def _batch_fits_queue(cls, data: Any) -> Any:
        # A small queue alone should not fail against the *default* batch size; shrink the batch to fit.
        # A batch size the caller chose is never changed (the after-check reports it instead).
        if isinstance(data, dict) and "batch_size" not in data:
            queue = data.get("queue_max_size")
            if isinstance(queue, int) and not isinstance(queue, bool) and 1 <= queue < _DEFAULT_BATCH_SIZE:
                return {**data, "batch_size": queue}
        return data

    @model_validator(mode="after")
    def _cross_field(self) -> LeanLLMConfig:
        if self.database_url is not None and self.leanllm_api_key is not None:
            raise ValueError(
                "database_url (LEANLLM_DATABASE_URL) and leanllm_api_key (LEANLLM_API_KEY) are mutually "
                "exclusive: set database_url for a self-hosted SQL store or leanllm_api_key for the LeanLLM "
                "service, not both"
            )
        if self.batch_size > self.queue_max_size:
            raise ValueError(
                f"batch_size (LEANLLM_BATCH_SIZE) = {self.batch_size} must not exceed "
                f"queue_max_size (LEANLLM_QUEUE_MAX_SIZE) = {self.queue_max_size}"
            )
        return self

    # --- derived values --------------------------------------------------------------------------------

    @property
    def effective_redaction_mode(self) -> RedactionMode:
        """The mode in force: the explicit ``redaction_mode`` if set, else ``REDACTED`` when content capture
        is on and ``METADATA`` when it is off."""
        if self.redaction_mode is not None:
            return self.redaction_mode
        return RedactionMode.REDACTED if self.capture_content else RedactionMode.METADATA

    @property
    def persistence_target(self) -> Literal["sql", "service"] | None:
        """``"sql"`` (database_url), ``"service"`` (leanllm_api_key), or None (neither set, or persistence
        off)."""
        if not self.enable_persistence:
            return None
        if self.database_url is not None:
            return "sql"
        if self.leanllm_api_key is not None:
            return "service"
        return None

    @property
    def sqlalchemy_async_url(self) -> str | None:
        """``database_url`` with the async driver SQLAlchemy needs (aiosqlite / asyncpg); None when unset.

        Contains the password: hand it to ``create_async_engine``, never to a log (log
        ``masked_database_url``).
        """
        if self.database_url is None:
            return None
        scheme, _, rest = self.database_url.partition("://")
        if scheme.lower() in _SQLITE_SCHEMES:
            return f"sqlite+aiosqlite://{rest}"
        return f"postgresql+asyncpg://{rest}"

    @property
    def masked_database_url(self) -> str | None:
        """``database_url`` with the password replaced by ``***``, for logs and messages."""
        return None if self.database_url is None else mask_url(self.database_url)

    def replace(self, **changes: Any) -> LeanLLMConfig:
        """A validated copy with ``changes`` applied; ``model_copy(update=...)`` would skip the checks."""
        values = {name: getattr(self, name) for name in self.model_fields_set}
        values.update(changes)
        return type(self)(**values)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Feeds __repr__, __str__ and rich/devtools printing. SecretStr fields already print as '**********'.
        for name, value in super().__repr_args__():
            if name in ("database_url", "endpoint") and isinstance(value, str):
                yield name, mask_url(value)
            else:
                yield name, value

    # --- environment -----------------------------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> LeanLLMConfig:
        """Build from ``LEANLLM_*`` variables in ``environ`` (default ``os.environ``); ``overrides`` win.

        Empty or blank variables count as unset. Content capture also honours
        ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (``SPAN_ONLY``/``SPAN_AND_EVENT``/``true``
        turn it on; ``NO_CONTENT``/``EVENT_ONLY``/``false`` off) when ``LEANLLM_CAPTURE_CONTENT`` is not
        set. An override of ``None`` explicitly clears a setting the environment made. Raises
        :class:`ConfigError`.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[tuple[str, str | None, str]] = []
        for field, (var, kind) in _SPEC.items():
            raw = env.get(var)
            if raw is None or not raw.strip():
                continue
            try:
                values[field] = _PARSERS[kind](raw)
            except ValueError as exc:
                problems.append((field, var, str(exc)))
        if "capture_content" not in values:
            otel_capture = _otel_capture_content(env)
            if otel_capture is not None:
                values["capture_content"] = otel_capture
        _warn_unknown_variables(env)
        if problems:
            raise _config_error(problems)

        from_env_fields = {field for field in values if field not in overrides}
        values.update(overrides)
        try:
            return cls(**values)
        except ValidationError as exc:
            raise _config_error(_problems_from(exc, from_env_fields, values)) from None


def _otel_capture_content(env: Mapping[str, str]) -> bool | None:
    raw = env.get(OTEL_CAPTURE_CONTENT_ENV)
    if raw is None or not raw.strip():
        return None
    key = raw.strip().lower()
    if key in _OTEL_CAPTURE_ON:
        return True
    if key in _OTEL_CAPTURE_OFF:
        return False
    # Shared with every GenAI instrumentation, so an unknown value must not stop the app; OTel treats it
    # as NO_CONTENT, and so do we.
    _logger.warning(
        "%s=%r is not one of NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT, true, false; content capture stays off",
        OTEL_CAPTURE_CONTENT_ENV,
        raw,
    )
    return False


# Read elsewhere, not configuration fields (``_internal.py``: how internal telemetry errors surface).
_OTHER_KNOWN_VARIABLES = frozenset({"LEANLLM_INTERNAL_ERRORS"})


def _warn_unknown_variables(env: Mapping[str, str]) -> None:
    for var in env:
        if var.startswith("LEANLLM_") and var not in _FIELD_BY_ENV and var not in _OTHER_KNOWN_VARIABLES:
            close = difflib.get_close_matches(var, list(_FIELD_BY_ENV), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            _logger.warning("unknown environment variable %s is ignored%s", var, hint)


def _problems_from(
    exc: ValidationError, from_env_fields: set[str], values: Mapping[str, Any]
) -> list[tuple[str, str | None, str]]:
    problems: list[tuple[str, str | None, str]] = []
    for error in exc.errors(include_url=False, include_input=False):
        message = error["msg"].removeprefix("Value error, ")
        loc = error["loc"]
        if not loc:  # model-level check; its message names fields and variables itself
            problems.append(("", None, message))
            continue
        field = str(loc[0])
        var = ENV_VARS.get(field) if field in from_env_fields else None
        shows_value = ", got " in message
        if var is not None and not shows_value and not is_secret_name(field) and field != "database_url":
            message = f"{message}, got {values[field]!r}"
        problems.append((field, var, message))
    return problems


def _config_error(problems: list[tuple[str, str | None, str]]) -> ConfigError:
    lines = []
    for field, var, message in problems:
        if var is not None:
            lines.append(f"{var}: {message} (field {field})")
        elif field:
            lines.append(f"{field}: {message}")
        else:
            lines.append(message)
    head = "invalid LeanLLM configuration: " if len(lines) == 1 else "invalid LeanLLM configuration:\n  "
    return ConfigError(head + "\n  ".join(lines), tuple(problems))
