"""Credential values a call was given, so they can be cut out of text that leaves the process (error messages).

Request attributes never read credentials (see ``attributes``), but an exception message is free text: providers and
HTTP libraries echo the request URL (with its query string and user-info) or the key they rejected. Only on failure,
the values the caller passed are collected from the call's keyword arguments and replaced in the message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

REDACTED = "[REDACTED]"
_MIN_LENGTH = 4
_SECRET_NAME = re.compile(r"key|secret|token|password|passwd|credential|auth|signature|cookie", re.IGNORECASE)
_URL_KWARGS = ("api_base", "base_url")
_HEADER_KWARGS = ("extra_headers", "headers")


def _url_secrets(url: str) -> Iterable[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    if parts.username:
        yield parts.username
    if parts.password:
        yield parts.password
    for _, value in parse_qsl(parts.query, keep_blank_values=False):
        yield value


def _header_secrets(headers: Mapping[Any, Any]) -> Iterable[str]:
    for name, value in headers.items():
        if not isinstance(value, str) or not _SECRET_NAME.search(str(name)):
            continue
        yield value
        scheme, _, credential = value.partition(" ")
        if credential and scheme.lower() in ("bearer", "basic", "token"):
            yield credential


def credential_values(kwargs: Mapping[str, Any]) -> list[str]:
    """Secret-looking values among a LiteLLM call's keyword arguments, longest first."""
    found: set[str] = set()
    for name, value in kwargs.items():
        if name in _URL_KWARGS and isinstance(value, str):
            found.update(_url_secrets(value))
        elif name in _HEADER_KWARGS and isinstance(value, Mapping):
            found.update(_header_secrets(value))
        elif isinstance(value, str) and _SECRET_NAME.search(name):
            found.add(value)
    return sorted((v for v in found if len(v) >= _MIN_LENGTH), key=len, reverse=True)


def scrub(text: str, kwargs: Mapping[str, Any]) -> str:
    """``text`` with every credential value of the call replaced by ``[REDACTED]``."""
    for value in credential_values(kwargs):
        if value in text:
            text = text.replace(value, REDACTED)
    return text
