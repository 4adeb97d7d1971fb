"""How numbers and times read to a person, the same in the CLI's tables and the viewer's pages."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["duration", "usd", "utc"]


def utc(value: datetime | None) -> str:
    """``2025-01-31 12:00:00`` in UTC (empty for None)."""
    return "" if value is None else value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def duration(value: float | None) -> str:
    """Milliseconds as ``123ms``, or ``12.34s`` from ten seconds on (``-`` for None)."""
    if value is None:
        return "-"
    return f"{value / 1000:.2f}s" if value >= 10_000 else f"{value:.0f}ms"


def usd(value: float | None) -> str:
    """``$0.000420`` (``-`` for None)."""
    return "-" if value is None else f"${value:.6f}"
