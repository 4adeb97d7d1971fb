"""GenAI JSON parts encoded to at most ``cap`` characters: :func:`encode_capped` shortens the longest text slots
inside the JSON (marked ``"truncated": true``), so the attribute always parses."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

# --- capped JSON encoding -----------------------------------------------------------------------------------------

_SLOT_KEYS = ("content", "arguments", "response", "description", "parameters")
_TRUNCATED_OVERHEAD = len(',"truncated":true')
# Slots this short are never cut: a digest ("hmac-sha256:" + 64 hex) or a marker means nothing once cut.
_MIN_SLOT = 80
_SURROGATES = {code: 0xFFFD for code in range(0xD800, 0xE000)}


def dumps(value: Any) -> str:
    """Compact JSON, non-ASCII kept as is, always encodable as UTF-8 (lone surrogates become U+FFFD)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.translate(_SURROGATES)
    return text


def encode_capped(items: list[dict[str, Any]], cap: int) -> tuple[str, bool]:
    """``items`` as a JSON array of at most ``cap`` characters; True when anything was cut.

    The longest text slots (part ``content``, tool ``arguments`` / ``response``, tool ``description`` /
    ``parameters``) are shortened to a common length, largest first, and their container gets
    ``"truncated": true``. If that is not enough (thousands of tiny parts), the oldest items are dropped.
    ``items`` is modified in place.
    """
    text = dumps(items)
    if len(text) <= cap:
        return text, False
    for _ in range(4):
        slots = [slot for slot in _slots(items) if slot[2] > _MIN_SLOT]
        if not slots:
            break
        level = max(_MIN_SLOT, _water_level([size for _, _, size in slots], len(text) - cap))
        cut = False
        for container, key, size in slots:
            if size > level:
                container[key] = _cut(container[key], level, size)
                container["truncated"] = True
                cut = True
        text = dumps(items)
        if len(text) <= cap or not cut:
            break
    if len(text) <= cap:
        return text, True
    sizes = [len(dumps(item)) for item in items]
    total = len(text)
    drop = 0
    while drop < len(items) and total > cap:
        total -= sizes[drop] + (1 if drop < len(items) - 1 else 0)
        drop += 1
    del items[:drop]
    text = dumps(items)
    return (text if len(text) <= cap else "[]"), True


def _slots(items: list[dict[str, Any]]) -> Iterable[tuple[dict[str, Any], str, int]]:
    for item in items:
        parts = item.get("parts")
        containers = parts if isinstance(parts, list) else (item,)
        for container in containers:
            if not isinstance(container, dict):
                continue
            for key in _SLOT_KEYS:
                value = container.get(key)
                if value is not None:
                    yield container, key, len(dumps(value))


def _water_level(sizes: list[int], excess: int) -> int:
    """Largest L such that cutting every size above L down to L saves ``excess`` plus the markers' cost."""
    ordered = sorted(sizes, reverse=True)
    total = 0
    for k, size in enumerate(ordered, start=1):
        total += size
        level = (total - excess - _TRUNCATED_OVERHEAD * k) // k
        following = ordered[k] if k < len(ordered) else 0
        if level >= following:
            return max(0, level)
    return 0


def _cut(value: Any, level: int, encoded: int) -> str:
    """``value`` (as text) shortened so its JSON encoding is about ``level`` characters."""
    text = value if isinstance(value, str) else dumps(value)
    ratio = len(text) / encoded if encoded else 1.0
    return text[: max(0, int(level * ratio) - 3)] + "..."
