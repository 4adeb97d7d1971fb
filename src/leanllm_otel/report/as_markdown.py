"""The compliance report as Markdown."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from leanllm_otel.report.data import GROUP_COLUMNS, Report, num, usd
from leanllm_otel.textsafe import markdown_cell

__all__ = ["markdown"]


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table; every cell is untrusted text (models, labels, keys): HTML and ``|`` escaped, one line."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(markdown_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown(r: Report) -> str:
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
                [e["timestamp"], e["kind"], e["name"], e["key"], usd(e["value"]), usd(e["threshold"])]
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
            [[e["timestamp"], e["name"], e["key"], num(e["value"]), num(e["threshold"])] for e in r.anomalies],
        )
        if r.anomalies
        else "None.\n"
    )
    out.append("\n## Per model\n")
    out.append(_md_table(["model", *GROUP_COLUMNS], [[g["model"], *(g[c] for c in GROUP_COLUMNS)] for g in r.by_model]))
    if r.by_label:
        out.append("\n## Per label\n")
        out.append(
            _md_table(["label", *GROUP_COLUMNS], [[g["label"], *(g[c] for c in GROUP_COLUMNS)] for g in r.by_label])
        )
    return "".join(out)
