"""Server-side SVG charts (no JavaScript, no library): columns over time, lines over time, horizontal bars.

Every text node is escaped here (labels are model names and label values: untrusted), and nothing uses inline
``style`` (the viewer's Content-Security-Policy forbids it): colours come from classes in ``ui.css``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["Series", "bar_chart", "column_chart", "line_chart"]

_W, _H = 960, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 16, 36


@dataclass(frozen=True)
class Series:
    """One line (or one stacked layer): its name, its CSS class and one value per x position (None: no point)."""

    name: str
    css: str
    values: Sequence[float | None]


def _nice_max(value: float) -> float:
    """The smallest top of the axis >= ``value`` whose quarter (one grid step) is 1, 2, 2.5 or 5 times a power of 10."""
    if value <= 0:
        return 4.0
    quarter = value / 4
    magnitude = 10.0 ** math.floor(math.log10(quarter))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if quarter <= step * magnitude:
            return 4 * step * magnitude
    return float(value)


def _frame(title: str, y_max: float, fmt: Callable[[float], str], x_labels: Sequence[str]) -> list[str]:
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(5):
        y = _TOP + plot_h - plot_h * i / 4
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="axis" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt(y_max * i / 4))}</text>'
        )
    if x_labels:
        step = max(1, len(x_labels) // 6)
        for i in range(0, len(x_labels), step):
            x = _LEFT + plot_w * (i + 0.5) / len(x_labels)
            parts.append(
                f'<text class="axis" x="{x:.1f}" y="{_H - _BOTTOM + 16}" text-anchor="middle">'
                f"{escape(x_labels[i])}</text>"
            )
    return parts


def _legend(series: Sequence[Series]) -> list[str]:
    parts, x = [], _LEFT
    for s in series:
        parts.append(f'<rect class="{s.css}" x="{x}" y="{_H - 14}" width="10" height="10"/>')
        parts.append(f'<text class="legend" x="{x + 14}" y="{_H - 5}">{escape(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    return parts


def column_chart(
    title: str, x_labels: Sequence[str], layers: Sequence[Series], fmt: Callable[[float], str] = lambda v: f"{v:g}"
) -> Markup:
    """Stacked columns, one per x label (e.g. requests and errors per time bucket)."""
    totals = [sum(layer.values[i] or 0 for layer in layers) for i in range(len(x_labels))]
    y_max = _nice_max(max(totals, default=0))
    parts = _frame(title, y_max, fmt, x_labels)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    width = plot_w / max(len(x_labels), 1)
    for i, label in enumerate(x_labels):
        base = 0.0
        for layer in layers:
            value = layer.values[i] or 0
            if value <= 0:
                continue
            height = plot_h * value / y_max
            y = _TOP + plot_h - plot_h * base / y_max - height
            parts.append(
                f'<rect class="{layer.css}" x="{_LEFT + i * width + width * 0.1:.1f}" y="{y:.1f}" '
                f'width="{width * 0.8:.1f}" height="{height:.1f}"><title>{escape(label)}: '
                f"{escape(layer.name)} {escape(fmt(value))}</title></rect>"
            )
            base += value
    return Markup("".join([*parts, *_legend(layers), "</svg>"]))


def line_chart(
    title: str, x_labels: Sequence[str], series: Sequence[Series], fmt: Callable[[float], str] = lambda v: f"{v:g}"
) -> Markup:
    """Lines over the x labels (gaps where a value is None), each point with a tooltip."""
    values = [v for s in series for v in s.values if v is not None]
    y_max = _nice_max(max(values, default=0))
    parts = _frame(title, y_max, fmt, x_labels)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    n = max(len(x_labels), 1)
    for s in series:
        points = []
        for i, value in enumerate(s.values):
            if value is None:
                continue
            x, y = _LEFT + plot_w * (i + 0.5) / n, _TOP + plot_h - plot_h * value / y_max
            points.append((x, y, i, value))
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
            parts.append(f'<polyline class="{s.css} line" points="{path}" fill="none"/>')
        for x, y, i, value in points:
            parts.append(
                f'<circle class="{s.css}" cx="{x:.1f}" cy="{y:.1f}" r="3"><title>'
                f"{escape(x_labels[i])}: {escape(s.name)} {escape(fmt(value))}</title></circle>"
            )
    return Markup("".join([*parts, *_legend(series), "</svg>"]))


def bar_chart(
    title: str, items: Sequence[tuple[str, float]], css: str = "bar", fmt: Callable[[float], str] = lambda v: f"{v:g}"
) -> Markup:
    """Horizontal bars, one per ``(label, value)``, largest scale first as given."""
    width, row_h, label_w, value_w = 560, 22, 190, 90
    height = _TOP + row_h * max(len(items), 1) + 8
    top = max((value for _, value in items), default=0) or 1.0
    parts = [
        f'<svg class="chart bars" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    span = width - label_w - value_w
    for i, (label, value) in enumerate(items):
        y = _TOP + i * row_h
        shown = label if len(label) <= 32 else label[:31] + "…"
        parts.append(
            f'<text class="label" x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(shown)}'
            f"<title>{escape(label)}</title></text>"
        )
        parts.append(
            f'<rect class="{css}" x="{label_w}" y="{y + 3}" width="{max(span * value / top, 1):.1f}" '
            f'height="{row_h - 6}"><title>{escape(label)}: {escape(fmt(value))}</title></rect>'
        )
        parts.append(f'<text class="value" x="{width - value_w + 8}" y="{y + 15}">{escape(fmt(value))}</text>')
    if not items:
        parts.append(f'<text class="axis" x="{label_w}" y="{_TOP + 14}">no data</text>')
    return Markup("".join([*parts, "</svg>"]))
