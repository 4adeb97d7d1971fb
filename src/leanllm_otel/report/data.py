"""The compliance report's data: :func:`build_report` reads the store for a period and returns a :class:`Report`."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from leanllm_otel.processing.detectors import INJECTION_TYPES, PII_TYPES, SECRET_TYPES
from leanllm_otel.semconv import FINDING_REPAIRED_VALUE
from leanllm_otel.store.schema import events

__all__ = ["GROUP_COLUMNS", "Report", "build_report", "num", "parse_when", "usd"]

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


GROUP_COLUMNS = (
    "calls",
    "errors",
    "blocked",
    "calls_with_findings",
    "tokens",
    "cost_usd",
    "latency_p50_ms",
    "latency_p95_ms",
)


def usd(value: Any) -> str:
    return "" if value is None else f"{float(value):.4f}"


def num(value: Any) -> str:
    return "" if value is None else f"{float(value):.4g}"
