"""The ``/stats`` page: its time window (default the last 24 hours, "all time" explicit) and its charts (requests,
errors and latency per time bucket, tokens and cost per model and label) from the store's SQL aggregates."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from markupsafe import Markup

from leanllm_otel.formatting import duration
from leanllm_otel.store.queries import GroupStats, StoreStats
from leanllm_otel.ui.charts import Series, bar_chart, column_chart, line_chart
from leanllm_otel.ui.forms import FilterForm

__all__ = ["DEFAULT_WINDOW", "WINDOWS", "Overview", "OverviewWindow", "build_overview", "overview_window"]

# The overview's time windows (``window`` parameter); None: all time. Without ``since`` the page shows the default.
WINDOWS: dict[str, timedelta | None] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "all": None,
}
WINDOW_NAMES = {"1h": "last 1 h", "24h": "last 24 h", "7d": "last 7 days", "30d": "last 30 days", "all": "all time"}
DEFAULT_WINDOW = "24h"
_TOP_GROUPS = 12


@dataclass(frozen=True)
class OverviewWindow:
    """Which time the overview covers: a named window ending at ``until`` (or now), or the form's own From."""

    name: str  # a key of WINDOWS, or "custom" when the form's From field decides
    since: datetime | None
    until: datetime | None

    @property
    def title(self) -> str:
        return WINDOW_NAMES.get(self.name, "your From / Until")


def overview_window(form: FilterForm, value: str | None) -> OverviewWindow:
    """The window ``value`` names (default :data:`DEFAULT_WINDOW`), applied to ``form.event_filter``.

    An explicit From (``since``) wins over the window. A bad value is reported in ``form.errors``.
    """
    chosen = (value or "").strip() or DEFAULT_WINDOW
    event_filter = form.event_filter
    if chosen not in WINDOWS:
        form.errors["window"] = f"window: expected one of {', '.join(WINDOWS)}, got {chosen!r}"
        return OverviewWindow(DEFAULT_WINDOW, None, None)
    if form.values.get("since"):
        return OverviewWindow("custom", event_filter.since, event_filter.until)
    length = WINDOWS[chosen]
    if length is None:
        return OverviewWindow(chosen, None, event_filter.until)
    end = event_filter.until or datetime.now(timezone.utc)
    window = OverviewWindow(chosen, end - length, event_filter.until)
    form.event_filter = dataclasses.replace(event_filter, since=window.since)
    return window


@dataclass
class Overview:
    stats: StoreStats
    window: OverviewWindow
    charts: dict[str, Markup]

    @property
    def bucket_name(self) -> str:
        timeline = self.stats.timeline
        return bucket_name(timeline.size) if timeline is not None else ""


def _label(start: datetime, size: timedelta) -> str:
    if size >= timedelta(days=1):
        return start.strftime("%m-%d")
    return start.strftime("%H:%M:%S" if size < timedelta(minutes=1) else "%m-%d %H:%M")


def bucket_name(size: timedelta) -> str:
    """``5 s``, ``15 min``, ``6 h``, ``1 d``."""
    seconds = int(size.total_seconds())
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length and seconds % length == 0:
            return f"{seconds // length} {unit}"
    return f"{seconds} s"


def _groups(title: str, groups: Sequence[GroupStats]) -> dict[str, Markup]:
    top = list(groups)[:_TOP_GROUPS]
    return {
        f"{title} tokens": bar_chart(
            f"Tokens by {title}", [(g.key, float(g.total_tokens)) for g in top], "bar", lambda v: f"{v:,.0f}"
        ),
        f"{title} cost": bar_chart(
            f"Cost by {title} (USD)", [(g.key, g.cost) for g in top], "bar cost", lambda v: f"${v:.4f}"
        ),
    }


def build_overview(stats: StoreStats, window: OverviewWindow) -> Overview:
    """Charts for ``stats`` (read with its timeline) over ``window``."""
    charts: dict[str, Markup] = {}
    timeline = stats.timeline
    if timeline is not None:
        buckets = timeline.buckets
        labels = [_label(start, timeline.size) for start in timeline.starts()]
        charts["requests"] = column_chart(
            "Requests and errors",
            labels,
            [
                Series("ok", "ok", [float(b.calls - b.errors) for b in buckets]),
                Series("errors", "err", [float(b.errors) for b in buckets]),
            ],
            lambda v: f"{v:g}",
        )
        charts["latency"] = line_chart(
            "Latency p50 / p95 and time to first token p50",
            labels,
            [
                Series("p50", "p50", [b.latency_p50_ms for b in buckets]),
                Series("p95", "p95", [b.latency_p95_ms for b in buckets]),
                Series("TTFT p50", "ttft", [b.ttft_p50_ms for b in buckets]),
            ],
            duration,
        )
    charts.update(_groups("model", stats.by_model))
    charts.update(_groups("label", stats.by_label))
    return Overview(stats, window, charts)
