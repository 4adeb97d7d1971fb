"""Compliance report over the SQL store: what was called, what went wrong, what was found, blocked and spent.

``build_report(url, since, until)`` reads ``leanllm_events`` (and ``leanllm_guardrail_events`` when migration
``0003_budgets`` has run) and returns a :class:`Report`; ``render(report, "md" | "json" | "html")`` formats it. The
HTML is one self-contained file (inline CSS and SVG charts, no external assets). Findings are reported as types
and counts only: the store never holds matched text, and neither does the report.
"""

from __future__ import annotations

import html
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from leanllm_otel.processing.detectors import INJECTION_TYPES, PII_TYPES, SECRET_TYPES
from leanllm_otel.semconv import FINDING_REPAIRED_VALUE
from leanllm_otel.store.schema import events
from leanllm_otel.textsafe import markdown_cell

__all__ = ["FORMATS", "Report", "build_report", "render"]

FORMATS = ("md", "json", "html")
_SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")


def _category(finding_type: str) -> str:
    if finding_type == FINDING_REPAIRED_VALUE:  # not a detector's: an exporter replaced a character it cannot carry
        return "repaired"
    if finding_type in SECRET_TYPES:
        return "secret"
    if finding_type in PII_TYPES:
        return "pii"
    if finding_type in INJECTION_TYPES:
        return "injection"
    return "custom"


@dataclass
class Report:
    """Everything the report says, as plain data (``asdict`` gives the JSON form)."""

    since: str
    until: str
    generated_at: str
    database: str
    totals: dict[str, Any] = field(default_factory=dict)
    by_model: list[dict[str, Any]] = field(default_factory=list)
    by_label: list[dict[str, Any]] = field(default_factory=list)
    daily: list[dict[str, Any]] = field(default_factory=list)
    findings_by_type: list[dict[str, Any]] = field(default_factory=list)
    calls_by_max_severity: dict[str, int] = field(default_factory=dict)
    findings_by_category: dict[str, int] = field(default_factory=dict)
    redaction: dict[str, Any] = field(default_factory=dict)
    blocked: list[dict[str, Any]] = field(default_factory=list)
    budget_events: list[dict[str, Any]] = field(default_factory=list)
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    guardrail_table: bool = False


class _Group:
    def __init__(self) -> None:
        self.calls = self.errors = self.blocked = self.with_findings = 0
        self.tokens = 0
        self.cost = 0.0
        self.latencies: list[float] = []

    def add(self, row: Any, findings: Mapping[str, int]) -> None:
        self.calls += 1
        self.errors += row.status == "error"
        self.blocked += bool(row.blocked)
        self.with_findings += bool(findings)
        self.tokens += (row.input_tokens or 0) + (row.output_tokens or 0)
        self.cost += row.cost or 0.0
        if row.latency_ms is not None:
            self.latencies.append(float(row.latency_ms))

    def as_dict(self, name: str, key: str) -> dict[str, Any]:
        lat = sorted(self.latencies)
        p50 = lat[len(lat) // 2] if lat else None
        p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))] if lat else None
        return {
            key: name,
            "calls": self.calls,
            "errors": self.errors,
            "error_rate": round(self.errors / self.calls, 4) if self.calls else 0.0,
            "blocked": self.blocked,
            "calls_with_findings": self.with_findings,
            "tokens": self.tokens,
            "cost_usd": round(self.cost, 6),
            "latency_p50_ms": None if p50 is None else round(p50, 1),
            "latency_p95_ms": None if p95 is None else round(p95, 1),
        }


async def _collect(engine: AsyncEngine, since: datetime, until: datetime, report: Report) -> None:
    c = events.c
    statement = select(
        c.timestamp,
        c.model,
        c.labels,
        c.status,
        c.input_tokens,
        c.output_tokens,
        c.cost,
        c.latency_ms,
        c.findings,
        c.max_severity,
        c.blocked,
        c.block_reason,
        c.redaction_mode,
        c.content_captured,
    ).where(and_(c.timestamp >= since, c.timestamp < until))
    total = _Group()
    models: dict[str, _Group] = defaultdict(_Group)
    labels: dict[str, _Group] = defaultdict(_Group)
    days: dict[str, Counter[str]] = defaultdict(Counter)
    type_counts: Counter[str] = Counter()
    type_calls: Counter[str] = Counter()
    severities: Counter[str] = Counter()
    modes: Counter[str] = Counter()
    blocked: Counter[str] = Counter()
    sensitive_calls = sensitive_protected = 0
    async with engine.connect() as connection:
        result = await connection.stream(statement.execution_options(yield_per=2000))
        async for row in result:
            findings = {str(k): int(v) for k, v in (row.findings or {}).items() if isinstance(v, int)}
            total.add(row, findings)
            models[row.model or "(unknown)"].add(row, findings)
            for name, value in (row.labels or {}).items():
                labels[f"{name}={value}"].add(row, findings)
            day = days[row.timestamp.astimezone(timezone.utc).strftime("%Y-%m-%d")]
            day["calls"] += 1
            day["errors"] += row.status == "error" and not row.blocked
            day["blocked"] += bool(row.blocked)
            for name, count in findings.items():
                type_counts[name] += count
                type_calls[name] += 1
            if row.max_severity:
                severities[str(row.max_severity)] += 1
            mode = row.redaction_mode or "unknown"
            modes[mode] += 1
            if any(_category(name) in ("pii", "secret") for name in findings):
                sensitive_calls += 1
                sensitive_protected += not (row.content_captured and mode == "full")
            if row.blocked:
                blocked[row.block_reason or "unknown"] += 1
    report.totals = total.as_dict("all", "scope")
    report.by_model = sorted((g.as_dict(k, "model") for k, g in models.items()), key=lambda d: -d["calls"])
    report.by_label = sorted((g.as_dict(k, "label") for k, g in labels.items()), key=lambda d: -d["calls"])
    report.daily = [
        {"day": d, "calls": v["calls"], "errors": v["errors"], "blocked": v["blocked"]} for d, v in sorted(days.items())
    ]
    report.findings_by_type = [
        {"type": t, "category": _category(t), "findings": n, "calls": type_calls[t]}
        for t, n in type_counts.most_common()
    ]
    report.calls_by_max_severity = {s: severities[s] for s in _SEVERITIES if severities[s]}
    by_category: Counter[str] = Counter()
    for t, n in type_counts.items():
        by_category[_category(t)] += n
    report.findings_by_category = dict(by_category.most_common())
    report.redaction = {
        "calls_by_mode": dict(modes.most_common()),
        "calls_with_pii_or_secrets": sensitive_calls,
        "of_which_not_stored_verbatim": sensitive_protected,
    }
    report.blocked = [{"reason": r, "calls": n} for r, n in blocked.most_common()]
    await _guardrail_events(connection_engine=engine, since=since, until=until, report=report)


async def _guardrail_events(connection_engine: AsyncEngine, since: datetime, until: datetime, report: Report) -> None:
    from sqlalchemy import inspect

    from leanllm_otel.store.budget_tables import guardrail_events as g

    async with connection_engine.connect() as connection:
        exists = await connection.run_sync(lambda c: inspect(c).has_table(g.name))
        if not exists:
            return
        report.guardrail_table = True
        rows = await connection.execute(
            select(g).where(and_(g.c.timestamp >= since, g.c.timestamp < until)).order_by(g.c.timestamp)
        )
        for row in rows:
            item = {
                "timestamp": row.timestamp.isoformat(),
                "kind": row.kind,
                "name": row.name,
                "key": row.key,
                "model": row.model,
                "event_id": row.event_id,
                "value": row.value,
                "threshold": row.threshold,
            }
            (report.anomalies if row.kind == "anomaly" else report.budget_events).append(item)


def build_report(database_url: str, since: datetime, until: datetime, *, timeout_s: float = 120.0) -> Report:
    """Read the store for ``[since, until)`` (UTC when naive) and summarise it."""
    from leanllm_otel.store.engine import Database

    since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    until = until if until.tzinfo else until.replace(tzinfo=timezone.utc)
    database = Database(database_url, name="leanllm-report")
    report = Report(
        since=since.isoformat(),
        until=until.isoformat(),
        generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        database=database.masked_url,
    )
    try:
        database.run(lambda engine: _collect(engine, since, until, report), timeout_s)
    finally:
        database.close()
    return report


def render(report: Report, fmt: str) -> str:
    """The report as ``md``, ``json`` or ``html`` text."""
    if fmt == "json":
        return json.dumps(asdict(report), indent=2, default=str) + "\n"
    if fmt == "md":
        return _markdown(report)
    if fmt == "html":
        return _html(report)
    raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")


# --- markdown -------------------------------------------------------------------------------------------------


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table; every cell is untrusted text (models, labels, keys): HTML and ``|`` escaped, one line."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(markdown_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


_GROUP_COLUMNS = (
    "calls",
    "errors",
    "blocked",
    "calls_with_findings",
    "tokens",
    "cost_usd",
    "latency_p50_ms",
    "latency_p95_ms",
)


def _markdown(r: Report) -> str:
    t = r.totals
    period = f"{r.since} to {r.until} (generated {r.generated_at}, {r.database})"
    out = [f"# LLM compliance report\n\n{markdown_cell(period)}\n"]
    out.append("## Summary\n")
    out.append(
        _md_table(
            ["calls", "errors", "error rate", "blocked", "calls with findings", "tokens", "cost (USD)"],
            [
                [
                    t.get("calls", 0),
                    t.get("errors", 0),
                    f"{t.get('error_rate', 0):.1%}",
                    t.get("blocked", 0),
                    t.get("calls_with_findings", 0),
                    t.get("tokens", 0),
                    f"{t.get('cost_usd', 0):.4f}",
                ]
            ],
        )
    )
    out.append("\n## Security findings by type\n")
    out.append(
        _md_table(
            ["type", "category", "findings", "calls"],
            [[f["type"], f["category"], f["findings"], f["calls"]] for f in r.findings_by_type],
        )
        if r.findings_by_type
        else "No findings.\n"
    )
    if r.calls_by_max_severity:
        out.append("\n## Calls by highest finding severity\n")
        out.append(_md_table(["severity", "calls"], r.calls_by_max_severity.items()))
    red = r.redaction
    out.append("\n## PII and secrets\n")
    out.append(
        f"{red.get('calls_with_pii_or_secrets', 0)} call(s) carried PII or secrets; "
        f"{red.get('of_which_not_stored_verbatim', 0)} of them were stored redacted, hashed or without "
        "content.\n\n"
    )
    out.append(_md_table(["redaction mode", "calls"], (red.get("calls_by_mode") or {}).items()))
    out.append("\n## Blocked requests\n")
    out.append(
        _md_table(["reason", "calls"], [[b["reason"], b["calls"]] for b in r.blocked]) if r.blocked else "None.\n"
    )
    out.append("\n## Budget events\n")
    out.append(
        _md_table(
            ["time", "event", "budget", "key", "spent (USD)", "limit (USD)"],
            [
                [e["timestamp"], e["kind"], e["name"], e["key"], _usd(e["value"]), _usd(e["threshold"])]
                for e in r.budget_events
            ],
        )
        if r.budget_events
        else "None.\n"
    )
    out.append("\n## Anomalies\n")
    out.append(
        _md_table(
            ["time", "type", "baseline key", "value", "baseline"],
            [[e["timestamp"], e["name"], e["key"], _num(e["value"]), _num(e["threshold"])] for e in r.anomalies],
        )
        if r.anomalies
        else "None.\n"
    )
    out.append("\n## Per model\n")
    out.append(
        _md_table(["model", *_GROUP_COLUMNS], [[g["model"], *(g[c] for c in _GROUP_COLUMNS)] for g in r.by_model])
    )
    if r.by_label:
        out.append("\n## Per label\n")
        out.append(
            _md_table(["label", *_GROUP_COLUMNS], [[g["label"], *(g[c] for c in _GROUP_COLUMNS)] for g in r.by_label])
        )
    return "".join(out)


def _usd(value: Any) -> str:
    return "" if value is None else f"{float(value):.4f}"


def _num(value: Any) -> str:
    return "" if value is None else f"{float(value):.4g}"


# --- html -----------------------------------------------------------------------------------------------------

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


def _html(r: Report) -> str:
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
                [e["timestamp"][:19], e["kind"], e["name"], e["key"], _usd(e["value"]), _usd(e["threshold"])]
                for e in r.budget_events
            ],
            (4, 5),
        ),
        "<h2>Anomalies</h2>",
        _html_table(
            ["time", "type", "baseline", "value", "baseline mean"],
            [[e["timestamp"][:19], e["name"], e["key"], _num(e["value"]), _num(e["threshold"])] for e in r.anomalies],
            (3, 4),
        ),
        "<h2>Per model</h2>",
        _html_table(
            ["model", *group_headers], [[g["model"], *(g[c] for c in _GROUP_COLUMNS)] for g in r.by_model], numeric
        ),
        "<h2>Per label</h2>",
        _html_table(
            ["label", *group_headers], [[g["label"], *(g[c] for c in _GROUP_COLUMNS)] for g in r.by_label], numeric
        ),
    ]
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>LLM compliance report</title>"
        f"<style>{_CSS}</style></head><body><main>{''.join(sections)}</main></body></html>\n"
    )


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """ISO date/datetime (UTC when no offset), ``now``, or a look-back like ``7d``, ``24h``, ``30m``."""
    now = now or datetime.now(timezone.utc)
    value = text.strip()
    if value.lower() == "now":
        return now
    units = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
    if value[:-1].isdigit() and value[-1:].lower() in units:
        return now - timedelta(seconds=int(value[:-1]) * units[value[-1].lower()])
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"expected an ISO date/time, 'now' or a look-back like 7d/24h, got {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
