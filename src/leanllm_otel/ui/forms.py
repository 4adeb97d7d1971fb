"""The filter form: query parameters <-> :class:`~leanllm_otel.event_filter.EventFilter`.

Every page (list, overview, export) reads the same parameters, so a filtered list links to the overview and the
export of exactly those events. Bad values are reported per field, never raised.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from leanllm_otel.event_filter import EventFilter, ScoreFilter, parse_time

__all__ = ["FILTER_FIELDS", "FilterForm", "parse_filters"]

# Single-valued filter parameters, in form order; ``label`` may repeat.
FILTER_FIELDS = (
    "q", "since", "until", "model", "provider", "status", "correlation_id", "user_id", "session_id",
    "min_cost", "min_latency_ms", "score",
)  # fmt: skip
_TEXT_FIELDS = ("model", "provider", "correlation_id", "user_id", "session_id")
_MAX_VALUE_CHARS = 500
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass
class FilterForm:
    """The submitted values (to redisplay the form), the filter they make, and what was wrong with them."""

    values: dict[str, str] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    event_filter: EventFilter = field(default_factory=EventFilter)
    errors: dict[str, str] = field(default_factory=dict)
    limit: int = DEFAULT_LIMIT

    @property
    def active(self) -> bool:
        return any(self.values.values()) or bool(self.labels)

    def params(self, **overrides: str | None) -> list[tuple[str, str]]:
        """The filter as query parameters, with ``overrides`` (None removes one)."""
        pairs = [(name, value) for name, value in self.values.items() if value and name not in overrides]
        pairs += [("label", label) for label in self.labels if "label" not in overrides]
        if self.limit != DEFAULT_LIMIT and "limit" not in overrides:
            pairs.append(("limit", str(self.limit)))
        pairs += [(name, value) for name, value in overrides.items() if value]
        return pairs

    def query(self, **overrides: str | None) -> str:
        """``?...`` for a link keeping this filter (empty string when there is nothing to keep)."""
        encoded = urlencode(self.params(**overrides))
        return f"?{encoded}" if encoded else ""


def _number(text: str, name: str, errors: dict[str, str]) -> float | None:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        errors[name] = f"{name}: expected a number >= 0, got {text!r}"
        return None
    return value


def parse_filters(params: Mapping[str, str], labels: Sequence[str] = ()) -> FilterForm:
    """Read the filter parameters (``labels``: every ``label=KEY=VALUE`` given)."""
    form = FilterForm()
    errors = form.errors
    values = {name: (params.get(name) or "").strip()[:_MAX_VALUE_CHARS] for name in FILTER_FIELDS}
    form.values = values
    criteria: dict[str, object] = {name: values[name] or None for name in _TEXT_FIELDS}
    for name in ("since", "until"):
        if values[name]:
            try:
                criteria[name] = parse_time(values[name])
            except ValueError as exc:
                errors[name] = f"{name}: {exc}"
    status = values["status"]
    if status not in ("", "error"):
        errors["status"] = f"status: expected 'error' or nothing, got {status!r}"
    criteria["errors_only"] = status == "error"
    for name in ("min_cost", "min_latency_ms"):
        if values[name]:
            criteria[name] = _number(values[name], name, errors)
    if values["q"]:
        criteria["text"] = values["q"]
    if values["score"]:
        try:
            criteria["score"] = ScoreFilter.parse(values["score"])
        except ValueError as exc:
            errors["score"] = str(exc)
    pairs: dict[str, str] = {}
    for label in labels:
        key, sep, value = label.strip().partition("=")
        if label.strip() and (not sep or not key.strip()):
            errors["label"] = f"label: expected KEY=VALUE, got {label!r}"
        elif sep:
            pairs[key.strip()] = value.strip()
            form.labels.append(f"{key.strip()}={value.strip()}")
    criteria["labels"] = pairs
    limit_text = (params.get("limit") or "").strip()
    if limit_text:
        if limit_text.isdigit() and 1 <= int(limit_text) <= MAX_LIMIT:
            form.limit = int(limit_text)
        else:
            errors["limit"] = f"limit: expected a whole number from 1 to {MAX_LIMIT}, got {limit_text!r}"
    form.event_filter = EventFilter(**criteria)  # type: ignore[arg-type]
    return form
