"""The compliance report as one self-contained HTML file (inline CSS and SVG charts, no external assets)."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from leanllm_otel.report.data import GROUP_COLUMNS, Report, num, usd

__all__ = ["html_page"]


_CATEGORY_COLOURS = {"secret": "#c0392b", "pii": "#d68910", "injection": "#7d3c98", "custom": "#2e86c1"}
_CSS = """
body{font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1c2833;margin:0;background:#f4f6f7}
main{max-width:1100px;margin:0 auto;padding:28px 32px 60px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:18px;margin:34px 0 10px;border-bottom:2px solid #d5dbdb;padding-bottom:4px}
.meta{color:#5d6d7e;font-size:13px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;margin-top:20px}
.card{background:#fff;border-radius:8px;padding:14px 16px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card .v{font-size:24px;font-weight:600}
.card .l{font-size:12px;color:#5d6d7e;text-transform:uppercase;letter-spacing:.04em}
.card.bad .v{color:#c0392b}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:16px;margin-top:16px}
.panel{background:#fff;border-radius:8px;padding:14px 16px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.panel h3{font-size:14px;margin:0 0 8px;color:#34495e}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
th,td{padding:6px 10px;text-align:left;border-bottom:1px solid #eaeded}th{background:#eaf2f8;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.empty{color:#7f8c8d;font-style:italic}
.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px;vertical-align:-1px}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _h_bars(items: Sequence[tuple[str, float, str]], fmt: str = "{:g}", width: int = 480) -> str:
    """Horizontal bar chart: (label, value, colour) per bar."""
    if not items:
        return '<p class="empty">Nothing to chart.</p>'
    bar_h, gap, label_w = 20, 6, 150
    top = max(v for _, v, _ in items) or 1.0
    height = len(items) * (bar_h + gap)
    parts = [f'<svg role="img" width="100%" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    for i, (label, value, colour) in enumerate(items):
        y = i * (bar_h + gap)
        w = max(1.0, (width - label_w - 70) * value / top)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" font-size="12" text-anchor="end" fill="#34495e">'
            f"{_e(label[:22])}</text>"
        )
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" rx="3" fill="{colour}"/>')
        parts.append(
            f'<text x="{label_w + w + 6:.1f}" y="{y + 14}" font-size="12" fill="#1c2833">{_e(fmt.format(value))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _daily_chart(daily: Sequence[Mapping[str, Any]], width: int = 1000, height: int = 200) -> str:
    """Stacked columns per day: successful, failed, blocked calls."""
    if not daily:
        return '<p class="empty">No calls in this period.</p>'
    left, bottom, top_pad = 40, 24, 10
    top = max(d["calls"] for d in daily) or 1
    plot_h = height - bottom - top_pad
    step = (width - left) / len(daily)
    bar_w = max(2.0, min(40.0, step * 0.7))
    parts = [
        f'<svg role="img" width="100%" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="#aab7b8"/>',
        f'<text x="{left - 6}" y="{top_pad + 8}" font-size="11" text-anchor="end" fill="#5d6d7e">{top}</text>',
        f'<text x="{left - 6}" y="{height - bottom}" font-size="11" text-anchor="end" fill="#5d6d7e">0</text>',
    ]
    label_every = max(1, len(daily) // 12)
    for i, d in enumerate(daily):
        x = left + i * step + (step - bar_w) / 2
        y = height - bottom
        ok = d["calls"] - d["errors"] - d["blocked"]
        for value, colour in ((ok, "#5dade2"), (d["errors"], "#e74c3c"), (d["blocked"], "#8e44ad")):
            h = plot_h * value / top
            if h > 0:
                y -= h
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{colour}">'
                    f"<title>{_e(d['day'])}: {value}</title></rect>"
                )
        if i % label_every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - 6}" font-size="11" text-anchor="middle" '
                f'fill="#5d6d7e">{_e(d["day"][5:])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _html_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Iterable[int] = ()) -> str:
    num = set(numeric)
    head = "".join(f'<th class="{"n" if i in num else ""}">{_e(h)}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"n" if i in num else ""}">{_e(v)}</td>' for i, v in enumerate(row)) + "</tr>"
        for row in rows
    )
    if not body:
        return '<p class="empty">None in this period.</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_page(r: Report) -> str:
    t = r.totals
    cards = [
        ("Calls", f"{t.get('calls', 0):,}", False),
        ("Errors", f"{t.get('errors', 0):,} ({t.get('error_rate', 0):.1%})", t.get("errors", 0) > 0),
        ("Blocked", f"{t.get('blocked', 0):,}", t.get("blocked", 0) > 0),
        ("Calls with findings", f"{t.get('calls_with_findings', 0):,}", t.get("calls_with_findings", 0) > 0),
        ("Tokens", f"{t.get('tokens', 0):,}", False),
        ("Cost", f"${t.get('cost_usd', 0):,.4f}", False),
    ]
    card_html = "".join(
        f'<div class="card{" bad" if bad else ""}"><div class="l">{_e(label)}</div>'
        f'<div class="v">{_e(value)}</div></div>'
        for label, value, bad in cards
    )
    finding_bars = [
        (f["type"], float(f["findings"]), _CATEGORY_COLOURS.get(f["category"], "#2e86c1"))
        for f in r.findings_by_type[:15]
    ]
    cost_bars = [(g["model"], float(g["cost_usd"]), "#17a589") for g in r.by_model[:12]]
    legend = "".join(f'<span><i style="background:{c}"></i>{k}</span>' for k, c in _CATEGORY_COLOURS.items())
    red = r.redaction
    group_headers = ["calls", "errors", "blocked", "with findings", "tokens", "cost (USD)", "p50 ms", "p95 ms"]
    numeric = range(1, 9)
    sections = [
        f"<h1>LLM compliance report</h1><div class='meta'>{_e(r.since)} &rarr; {_e(r.until)} &middot; generated "
        f"{_e(r.generated_at)} &middot; {_e(r.database)}</div>",
        f'<div class="cards">{card_html}</div>',
        "<h2>Calls per day</h2><div class='panel'>"
        "<div class='legend'><span><i style='background:#5dade2'></i>ok</span><span><i style='background:#e74c3c'>"
        "</i>error</span><span><i style='background:#8e44ad'></i>blocked</span></div>"
        f"{_daily_chart(r.daily)}</div>",
        "<div class='grid2'>"
        f"<div class='panel'><h3>Security findings by type</h3><div class='legend'>{legend}</div>"
        f"{_h_bars(finding_bars)}</div>"
        f"<div class='panel'><h3>Cost by model (USD)</h3>{_h_bars(cost_bars, '{:.4f}')}</div></div>",
        "<h2>Findings</h2>",
        _html_table(
            ["type", "category", "findings", "calls"],
            [[f["type"], f["category"], f["findings"], f["calls"]] for f in r.findings_by_type],
            (2, 3),
        ),
        "<h2>PII and secrets</h2>",
        f"<p>{red.get('calls_with_pii_or_secrets', 0)} call(s) carried PII or secrets; "
        f"{red.get('of_which_not_stored_verbatim', 0)} of them were stored redacted, hashed or without content. "
        f"Calls by highest severity: {_e(', '.join(f'{k} {v}' for k, v in r.calls_by_max_severity.items()) or 'none')}."
        "</p>",
        _html_table(["redaction mode", "calls"], (red.get("calls_by_mode") or {}).items(), (1,)),
        "<h2>Blocked requests</h2>",
        _html_table(["reason", "calls"], [[b["reason"], b["calls"]] for b in r.blocked], (1,)),
        "<h2>Budget events</h2>",
        _html_table(
            ["time", "event", "budget", "key", "spent (USD)", "limit (USD)"],
            [
                [e["timestamp"][:19], e["kind"], e["name"], e["key"], usd(e["value"]), usd(e["threshold"])]
                for e in r.budget_events
            ],
            (4, 5),
        ),
        "<h2>Anomalies</h2>",
        _html_table(
            ["time", "type", "baseline", "value", "baseline mean"],
            [[e["timestamp"][:19], e["name"], e["key"], num(e["value"]), num(e["threshold"])] for e in r.anomalies],
            (3, 4),
        ),
        "<h2>Per model</h2>",
        _html_table(
            ["model", *group_headers], [[g["model"], *(g[c] for c in GROUP_COLUMNS)] for g in r.by_model], numeric
        ),
        "<h2>Per label</h2>",
        _html_table(
            ["label", *group_headers], [[g["label"], *(g[c] for c in GROUP_COLUMNS)] for g in r.by_label], numeric
        ),
    ]
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>LLM compliance report</title>"
        f"<style>{_CSS}</style></head><body><main>{''.join(sections)}</main></body></html>\n"
    )
