"""``LeanLLMConfig``: every leanllm-otel setting, validated, from arguments or ``LEANLLM_*`` variables.

Two ways to build one::

    LeanLLMConfig(database_url="sqlite:///events.db", capture_content=True)   # explicit
    LeanLLMConfig.from_env()                                                   # LEANLLM_* environment

The constructor never reads the environment; ``from_env()`` does, and keyword overrides passed to it win over
the environment. Each field declares its variable, text kind, group (delivery, privacy, sampling, runtime,
guardrails), default and doc in one place (:func:`setting`); ``SETTINGS`` and ``ENV_VARS`` are read off the fields.

Secrets (``leanllm_api_key``, ``hash_key``, the password in ``database_url``) never appear in ``repr()``,
``str()`` or in the text of any validation error this module raises.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Literal, cast

from pydantic import (
    ConfigDict,
    ValidationError,
    model_validator,
)

from leanllm_otel.config_groups import (
    DEFAULT_BATCH_SIZE,
    DeliverySettings,
    GuardrailSettings,
    PrivacySettings,
    RuntimeSettings,
    SamplingSettings,
    Setting,
)
from leanllm_otel.config_text import (
    PARSERS,
    SQLITE_SCHEMES,
    parse_bool,
)
from leanllm_otel.redaction_mode import RedactionMode
from leanllm_otel.sensitive import is_secret_name, mask_url

__all__ = [
    "ENV_VARS",
    "OTEL_CAPTURE_CONTENT_ENV",
    "SETTINGS",
    "ConfigError",
    "LeanLLMConfig",
    "RedactionMode",
    "Setting",
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

# --- the model -------------------------------------------------------------------------------------------


class LeanLLMConfig(GuardrailSettings, RuntimeSettings, SamplingSettings, PrivacySettings, DeliverySettings):
    """Every leanllm-otel setting. Immutable; unknown field names are rejected.

    Construct directly (the environment is not read) or with :meth:`from_env`. Invalid values raise
    ``pydantic.ValidationError`` (a ``ValueError``) naming the field; ``from_env`` raises :class:`ConfigError`
    naming the variable and the field.
    """

    # hide_input_in_errors: pydantic would otherwise print the raw input (a URL with its password, the
    # whole kwargs dict for model-level checks) into every ValidationError message.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    @model_validator(mode="before")
    @classmethod
    def _batch_fits_queue(cls, data: Any) -> Any:
        # A small queue alone should not fail against the *default* batch size; shrink the batch to fit.
        # A batch size the caller chose is never changed (the after-check reports it instead).
        if isinstance(data, dict) and "batch_size" not in data:
            queue = data.get("queue_max_size")
            if isinstance(queue, int) and not isinstance(queue, bool) and 1 <= queue < DEFAULT_BATCH_SIZE:
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
        if self.budgets and self.budgets_shared and self.database_url is None:
            raise ValueError("budgets_shared (LEANLLM_BUDGETS_SHARED) needs database_url (LEANLLM_DATABASE_URL)")
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
        if scheme.lower() in SQLITE_SCHEMES:
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
        for field, spec in SETTINGS.items():
            raw = env.get(spec.env)
            if raw is None or not raw.strip():
                continue
            try:
                values[field] = PARSERS[spec.kind](raw)
            except ValueError as exc:
                problems.append((field, spec.env, str(exc)))
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


SETTINGS: Mapping[str, Setting] = MappingProxyType(
    {
        name: Setting(name, extra["env"], extra["kind"], extra["group"], info.description or "")
        for name, info in LeanLLMConfig.model_fields.items()
        for extra in [cast("dict[str, Any]", info.json_schema_extra)]
    }
)
"""Field name -> its :class:`Setting` (variable, kind, group, doc), read off the fields themselves."""

ENV_VARS: Mapping[str, str] = MappingProxyType({name: s.env for name, s in SETTINGS.items()})
"""Field name -> environment variable, for every ``LeanLLMConfig`` field."""

_FIELD_BY_ENV: Mapping[str, str] = MappingProxyType({env: field for field, env in ENV_VARS.items()})


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
        secret = is_secret_name(field) or (field in SETTINGS and SETTINGS[field].kind == "secret")
        if var is not None and not shows_value and not secret:
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
