"""How a setting is declared (:func:`setting`: variable, text kind, group, default, doc on the field), how a
``LEANLLM_*`` variable's text is parsed (one parser per kind), and the checks on URLs and detector patterns that
:class:`~leanllm_otel.config.LeanLLMConfig` runs."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, JsonValue

from leanllm_otel.sensitive import mask_url

__all__ = [
    "PARSERS",
    "SQLITE_SCHEMES",
    "Group",
    "Kind",
    "Setting",
    "check_database_url",
    "check_http_url",
    "check_pattern",
    "parse_bool",
    "setting",
]

Kind = Literal["str", "secret", "bool", "int", "float", "json_object", "json_list", "str_list", "enum"]

Group = Literal["delivery", "privacy", "sampling", "runtime", "guardrails"]


@dataclass(frozen=True)
class Setting:
    """One setting as declared on its :class:`LeanLLMConfig` field: variable, text kind, group and doc."""

    field: str
    env: str
    kind: Kind
    group: Group
    description: str


def setting(env: str, kind: Kind, group: Group, description: str, default: Any = None, **constraints: Any) -> Any:
    """A :class:`LeanLLMConfig` field that declares, in one place, its variable, how the variable's text is parsed
    (``kind``), its group, its default and its doc; ``constraints`` are pydantic's (``ge=1``, ``default_factory``)."""
    extra: dict[str, JsonValue] = {"env": env, "kind": kind, "group": group}
    if "default_factory" in constraints:
        return Field(description=description, json_schema_extra=extra, **constraints)
    return Field(default=default, description=description, json_schema_extra=extra, **constraints)


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


def _parse_json(text: str, expected: type, what: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"expected {what}, got invalid JSON ({exc.msg})") from None
    if not isinstance(value, expected):
        raise ValueError(f"expected {what}, got JSON {type(value).__name__}")
    return value


def _parse_json_object(text: str) -> dict[str, Any]:
    return dict(_parse_json(text, dict, "a JSON object of name -> pattern"))


def _parse_json_list(text: str) -> list[Any]:
    return list(_parse_json(text, list, "a JSON list"))


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


PARSERS: dict[Kind, Callable[[str], Any]] = {
    "str": str.strip,
    "secret": str.strip,
    "enum": str.strip,
    "bool": parse_bool,
    "int": _parse_int,
    "float": _parse_float,
    "json_object": _parse_json_object,
    "json_list": _parse_json_list,
    "str_list": _parse_str_list,
}


# --- URLs ------------------------------------------------------------------------------------------------

SQLITE_SCHEMES = frozenset({"sqlite", "sqlite+aiosqlite"})
_POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+asyncpg", "postgres+asyncpg"})
_DB_URL_FORMS = "sqlite:///path.db, sqlite:///:memory:, or postgresql://user:password@host:5432/dbname"


def check_database_url(url: str) -> None:
    """Raise ValueError (never containing the password) when ``url`` is not a supported database URL."""
    shown = mask_url(url)
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError(f"{shown!r} is not a database URL; expected {_DB_URL_FORMS}")
    if any(ch.isspace() for ch in url):
        raise ValueError(f"{shown!r} contains whitespace; expected {_DB_URL_FORMS}")
    if scheme in SQLITE_SCHEMES:
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


def check_http_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(ch.isspace() for ch in url):
        raise ValueError(f"expected an http:// or https:// URL with a host, got {mask_url(url)!r}")
    try:
        parts.port  # noqa: B018 - urlsplit validates the port lazily, on access
    except ValueError:
        raise ValueError(f"invalid port in {mask_url(url)!r}") from None


def check_pattern(pattern: str) -> None:
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
