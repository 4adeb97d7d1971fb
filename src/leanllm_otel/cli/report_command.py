"""``leanllm-otel report``: the compliance report over the store (markdown, JSON or self-contained HTML)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from typing import Any

from leanllm_otel.cli import CLIError, add_database_option, resolve_database_url
from leanllm_otel.textsafe import terminal_safe


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="compliance report: calls, errors, findings, blocks, budgets, anomalies",
        description="Summarise the store over a period: calls, errors, security findings by type and severity, "
        "PII/secrets and how they were stored, blocked requests, budget events and anomalies, "
        "per model and label.",
    )
    add_database_option(parser)
    parser.add_argument("--since", default="7d", help="ISO date/time or look-back (7d, 24h); default 7d")
    parser.add_argument("--until", default="now", help="ISO date/time or 'now' (exclusive); default now")
    parser.add_argument("--format", choices=("md", "json", "html"), default="md", help="output format (md)")
    parser.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from leanllm_otel.report import build_report, parse_when, render

    url = resolve_database_url(args)
    now = datetime.now(timezone.utc)
    try:
        since, until = parse_when(args.since, now), parse_when(args.until, now)
    except ValueError as exc:
        raise CLIError(str(exc), code=2) from None
    if since >= until:
        raise CLIError(f"--since ({since.isoformat()}) must be before --until ({until.isoformat()})", code=2)
    # The file may be shown with cat or a pager: no control sequence of a stored field reaches it either.
    text = terminal_safe(render(build_report(url, since, until), args.format))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0
