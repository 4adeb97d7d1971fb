"""Credential values a call was given, so they can be cut out of text that leaves the process (error messages).

Request attributes never read credentials (see ``attributes``), but an exception message is free text: providers,
gateways and HTTP libraries echo the request URL (with its query string and user-info), its headers (an
``Authorization: Basic`` built from the URL's user-info, every ``extra_headers`` entry) or the key they rejected,
often percent-encoded or base64-encoded. Only on failure, the values the caller passed are collected from the
call's keyword arguments, in every spelling :func:`leanllm_otel.sensitive.forms` knows; the export thread cuts
them (and any URL's user-info and query string) out of the message. The rules live in
:mod:`leanllm_otel.sensitive`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from leanllm_otel.sensitive import (
    HEADER_KWARGS,
    MIN_SECRET_CHARS,
    URL_KWARGS,
    forms,
    is_secret_name,
    url_basic_forms,
    url_credentials,
)
from leanllm_otel.sensitive import scrub as scrub_text

_AUTH_SCHEMES = ("bearer", "basic", "token")


def _header_values(headers: Mapping[Any, Any]) -> Iterable[str]:
    # Every header value, whatever its name: "X-Tenant-Ref" says nothing about what it carries.
    for value in headers.values():
        if not isinstance(value, str):
            continue
        yield value
        scheme, _, credential = value.strip().partition(" ")
        if credential and scheme.lower() in _AUTH_SCHEMES:
            yield credential.strip()


def credential_values(kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    """Every spelling of every credential among a LiteLLM call's keyword arguments, longest first."""
    found: set[str] = set()
    spellings: set[str] = set()
    for name, value in kwargs.items():
        if name in URL_KWARGS and isinstance(value, str):
            found.update(url_credentials(value))
            spellings.update(url_basic_forms(value))
        elif name in HEADER_KWARGS and isinstance(value, Mapping):
            found.update(_header_values(value))
        elif isinstance(value, str) and is_secret_name(name):
            found.add(value)
    for value in found:
        if len(value) >= MIN_SECRET_CHARS:
            spellings.update(forms(value))
    return tuple(sorted(spellings, key=len, reverse=True))


def scrub(text: str, kwargs: Mapping[str, Any]) -> str:
    """``text`` with every credential of the call, and any URL's user-info and query string, as ``[REDACTED]``."""
    return scrub_text(text, credential_values(kwargs))
