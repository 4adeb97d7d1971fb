"""Compliance report over the SQL store: what was called, what went wrong, what was found, blocked and spent.

``build_report(url, since, until)`` reads ``leanllm_events`` (and ``leanllm_guardrail_events`` when migration
``0003_budgets`` has run) and returns a :class:`Report`; ``render(report, "md" | "json" | "html")`` formats it. The
HTML is one self-contained file (inline CSS and SVG charts, no external assets). Findings are reported as types
and counts only: the store never holds matched text, and neither does the report.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from leanllm_otel.report.as_html import html_page
from leanllm_otel.report.as_markdown import markdown
from leanllm_otel.report.data import Report, build_report, parse_when

__all__ = ["FORMATS", "Report", "build_report", "parse_when", "render"]

FORMATS = ("md", "json", "html")


def render(report: Report, fmt: str) -> str:
    """The report as ``md``, ``json`` or ``html`` text."""
    if fmt == "json":
        return json.dumps(asdict(report), indent=2, default=str) + "\n"
    if fmt == "md":
        return markdown(report)
    if fmt == "html":
        return html_page(report)
    raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
