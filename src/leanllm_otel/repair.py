"""Characters an export format cannot carry, replaced so that the event is kept (and says so).

A lone surrogate (``"x\\ud800"``: half an emoji from a web form) cannot be encoded as UTF-8, which JSON bodies,
protobuf strings and both SQL stores need; PostgreSQL also refuses NUL in text and JSON. Rather than lose the
whole event (or the whole request) to one such character in one label, every exporter replaces what its format
cannot carry with U+FFFD and adds ``REPAIRED_VALUE: <values repaired>`` to the event's findings
(``leanllm.security.findings``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from leanllm_otel.event import findings_text
from leanllm_otel.semconv import FINDING_REPAIRED_VALUE

__all__ = ["FINDING_REPAIRED_VALUE", "repair", "repair_text", "with_repair_finding"]

_REPLACEMENT = "\ufffd"
_SURROGATES = {code: _REPLACEMENT for code in range(0xD800, 0xE000)}
_SURROGATES_AND_NUL = {**_SURROGATES, 0: _REPLACEMENT}


def repair_text(text: str, *, nul: bool = False) -> str | None:
    """``text`` with lone surrogates (and NUL when ``nul``) replaced by U+FFFD, or None when it needs nothing."""
    if text.isascii():
        if nul and "\x00" in text:
            return text.replace("\x00", _REPLACEMENT)
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.translate(_SURROGATES_AND_NUL if nul else _SURROGATES)
    if nul and "\x00" in text:
        return text.replace("\x00", _REPLACEMENT)
    return None


def repair(value: Any, *, nul: bool = False) -> tuple[Any, int]:
    """``value`` (strings, lists, tuples, dicts with their keys) repaired, and how many strings changed.

    Returns ``value`` itself, untouched, when nothing needed repair.
    """
    if isinstance(value, str):
        fixed = repair_text(value, nul=nul)
        return (value, 0) if fixed is None else (fixed, 1)
    if isinstance(value, Mapping):
        count = 0
        out: dict[Any, Any] = {}
        for key, item in value.items():
            new_key, key_count = repair(key, nul=nul)
            new_item, item_count = repair(item, nul=nul)
            out[new_key] = new_item
            count += key_count + item_count
        return (out, count) if count else (value, 0)
    if isinstance(value, (list, tuple)):
        items = [repair(item, nul=nul) for item in value]
        count = sum(c for _, c in items)
        if not count:
            return value, 0
        fixed_items = [item for item, _ in items]
        return (tuple(fixed_items) if isinstance(value, tuple) else fixed_items), count
    return value, 0


def with_repair_finding(findings: Any, count: int) -> Any:
    """``findings`` (a ``{type: count}`` dict or its JSON text) with ``count`` more ``REPAIRED_VALUE``."""
    as_text = isinstance(findings, str)
    current: Any = findings
    if as_text:
        try:
            current = json.loads(findings)
        except ValueError:
            current = {}
    merged = dict(current) if isinstance(current, Mapping) else {}
    previous = merged.get(FINDING_REPAIRED_VALUE)
    merged[FINDING_REPAIRED_VALUE] = (previous if isinstance(previous, int) else 0) + count
    return findings_text(merged) if as_text else merged
