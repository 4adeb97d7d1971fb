"""The ``/stats`` page's numbers: requests, errors and latency per time bucket, tokens and cost per model and label."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from markupsafe import Markup

from leanllm_otel.formatting import duration
from leanllm_otel.store import GroupStats, StoreStats, percentile
from leanllm_otel.ui.charts import Series, bar_chart, column_chart, line_chart

__all__ = ["Overview", "build_overview"]

_BUCKETS = tuple(timedelta(seconds=n) for n in (1, 5, 15, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400))
_MAX_BUCKETS = 60
_TOP_GROUPS = 12


@dataclass
class Overview:
    stats: StoreStats
    bucket: timedelta | None
    charts: dict[str, Markup]

    @property
    def bucket_name(self) -> str:
        return bucket_name(self.bucket) if self.bucket is not None else ""


def _bucket_size(first: datetime, last: datetime) -> timedelta:
    span = last - first
    for size in _BUCKETS:
        if span / size <= _MAX_BUCKETS:
            return size
    return _BUCKETS[-1]


def _floor(value: datetime, size: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return epoch + size * ((value - epoch) // size)


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


def build_overview(stats: StoreStats, rows: Sequence[tuple[datetime, str, float | None, float | None]]) -> Overview:
    """Charts for the matching events (``rows``: ``(timestamp, status, latency_ms, ttft_ms)``, oldest first)."""
    charts: dict[str, Markup] = {}
    size: timedelta | None = None
    if rows:
        size = _bucket_size(rows[0][0], rows[-1][0])
        start = _floor(rows[0][0], size)
        count = int((rows[-1][0] - start) // size) + 1
        ok, errors = [0.0] * count, [0.0] * count
        latencies: list[list[float]] = [[] for _ in range(count)]
        ttfts: list[list[float]] = [[] for _ in range(count)]
        for timestamp, status, latency, ttft in rows:
            index = min(int((timestamp - start) // size), count - 1)
            (errors if status == "error" else ok)[index] += 1
            if latency is not None:
                latencies[index].append(latency)
            if ttft is not None:
                ttfts[index].append(ttft)
        labels = [_label(start + size * i, size) for i in range(count)]
        charts["requests"] = column_chart(
            "Requests and errors",
            labels,
            [Series("ok", "ok", ok), Series("errors", "err", errors)],
            lambda v: f"{v:g}",
        )
        for values in (*latencies, *ttfts):
            values.sort()
        charts["latency"] = line_chart(
            "Latency p50 / p95 and time to first token p50",
            labels,
            [
                Series("p50", "p50", [percentile(v, 0.5) for v in latencies]),
                Series("p95", "p95", [percentile(v, 0.95) for v in latencies]),
                Series("TTFT p50", "ttft", [percentile(v, 0.5) for v in ttfts]),
            ],
            duration,
        )
    charts.update(_groups("model", stats.by_model))
    charts.update(_groups("label", stats.by_label))
    return Overview(stats, size, charts)
