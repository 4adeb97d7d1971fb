"""``leanllm-otel report`` over a real store filled by instrumented calls (guard, SQL exporter, loopback server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import litellm
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from leanllm_otel.cli import main
from leanllm_otel.exporters.sql import SQLSpanExporter
from leanllm_otel.guardrails import (
    Budget,
    BudgetManager,
    EnforcementPolicy,
    Guard,
    LeanLLMPolicyViolation,
    SQLLedger,
)
from leanllm_otel.instrumentation.instrumentor import LeanLLMInstrumentor
from leanllm_otel.processing.processor import LeanLLMSpanProcessor
from leanllm_otel.report import build_report, parse_when, render
from leanllm_otel.settings import TelemetrySettings

SECRET = "AKIAIOSFODNN7EXAMPLE"


@pytest.fixture
def filled_store(sqlite_url: str, openai_server: Any) -> Iterator[str]:
    settings = TelemetrySettings(capture_content=True, security_scan=True)
    exporter = SQLSpanExporter(sqlite_url)
    guard = Guard(
        policy=EnforcementPolicy(block_secrets_in_prompt=True),
        budgets=BudgetManager([Budget("team-a", 1e-9, window="1d", scope={"team": "a"})], SQLLedger(sqlite_url)),
    )
    processor = LeanLLMSpanProcessor(settings)
    processor.add_span_processor(SimpleSpanProcessor(processor.wrap_exporter(guard.wrap_exporter(exporter, 0.0))))
    provider = TracerProvider()
    provider.add_span_processor(processor)
    instrumentor = LeanLLMInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=settings)
    guard.attach(instrumentor)
    base = {"api_base": openai_server.base_url, "api_key": "sk-test", "max_retries": 0}
    try:
        for text in ("hello there", "write to bob@example.com", "card 4111 1111 1111 1111 please"):
            litellm.completion(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": text}],
                               **base)
        from leanllm_otel.context import use_context

        with use_context(labels={"team": "a"}):
            litellm.completion(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "team call"}],
                               **base)
        with pytest.raises(LeanLLMPolicyViolation):
            litellm.completion(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": SECRET}], **base)
        with pytest.raises(litellm.exceptions.InternalServerError):
            litellm.completion(model="openai/err-500", messages=[{"role": "user", "content": "x"}], **base)
        assert guard.flush(10)
        provider.force_flush()
    finally:
        instrumentor.uninstrument()
        guard.close()
        provider.shutdown()
    yield sqlite_url


def _window() -> tuple[datetime, datetime]:
    now = datetime.now(timezone.utc)
    return now - timedelta(hours=1), now + timedelta(minutes=1)


def test_report_counts_calls_findings_blocks_and_budget_events(filled_store: str) -> None:
    report = build_report(filled_store, *_window())
    assert report.totals["calls"] == 6
    assert report.totals["errors"] == 2  # the refused call and the 500
    assert report.totals["blocked"] == 1
    types = {f["type"]: f for f in report.findings_by_type}
    assert types["EMAIL"]["category"] == "pii" and types["CREDIT_CARD"]["calls"] == 1
    assert types["AWS_KEY"]["category"] == "secret"
    assert report.blocked == [{"reason": "secret_in_prompt", "calls": 1}]
    assert report.redaction["calls_with_pii_or_secrets"] == 3
    assert report.redaction["of_which_not_stored_verbatim"] == 3  # capture on, default mode is "redacted"
    assert report.guardrail_table
    assert [(e["kind"], e["name"]) for e in report.budget_events] == [("budget_warn", "team-a")]
    models = {g["model"]: g for g in report.by_model}
    assert models["gpt-4o-mini"]["calls"] == 5 and models["err-500"]["errors"] == 1
    assert {g["label"] for g in report.by_label} == {"team=a"}
    assert sum(d["calls"] for d in report.daily) == 6
    # Nothing sensitive in any rendering.
    for fmt in ("md", "json", "html"):
        text = render(report, fmt)
        assert SECRET not in text and "bob@example.com" not in text and "4111 1111" not in text
    assert json.loads(render(report, "json"))["totals"]["blocked"] == 1
    html = render(report, "html")
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html
    assert "src=" not in html and "<link" not in html  # self-contained
    md = render(report, "md")
    assert "| secret_in_prompt | 1 |" in md and "| EMAIL | pii | 2 | 1 |" in md  # prompt and echoed answer


def test_report_window_excludes_other_periods(filled_store: str) -> None:
    past = datetime.now(timezone.utc) - timedelta(days=30)
    report = build_report(filled_store, past, past + timedelta(days=1))
    assert report.totals["calls"] == 0 and report.findings_by_type == [] and report.budget_events == []
    assert "No findings." in render(report, "md")


def test_cli_report_writes_html(filled_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    assert main(["report", "--database-url", filled_store, "--since", "2h", "--format", "html",
                 "--output", str(out)]) == 0
    assert "Blocked requests" in out.read_text()
    assert main(["report", "--database-url", filled_store, "--since", "1d", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["calls"] == 6
    assert main(["report", "--database-url", filled_store, "--since", "now", "--until", "1d"]) == 2
    assert main(["report", "--database-url", filled_store, "--since", "yesterday-ish"]) == 2


def test_parse_when() -> None:
    now = datetime(2026, 1, 10, tzinfo=timezone.utc)
    assert parse_when("7d", now) == datetime(2026, 1, 3, tzinfo=timezone.utc)
    assert parse_when("2026-01-01", now) == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_when("now", now) == now
