"""The ``leanllm-otel`` CLI store commands: output, filters, exit codes (in-process and as the installed script)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

from leanllm_otel.cli import COMMAND_MODULES, build_parser, main
from leanllm_otel.event import LLMEvent, span_to_event
from leanllm_otel.exporters.sql import SQLSpanExporter
from leanllm_otel.store.engine import head_revision
from loopback.events import fast_config, make_event, make_llm_span


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url"))


def seed(url: str, events: list[LLMEvent]) -> None:
    exporter = SQLSpanExporter(config=fast_config(url))
    try:
        exporter.write_rows([SQLSpanExporter.event_to_row(e, datetime.now(timezone.utc)) for e in events])
    finally:
        exporter.shutdown()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def seeded(db_url: str) -> tuple[str, list[LLMEvent]]:
    now = datetime.now(timezone.utc)  # at seeding, not at import: "--since 25m" is relative to the clock
    events = [
        make_event(now=now, minutes_ago=30, model="gpt-4o", labels={"feature": "search"}, latency_ms=120),
        make_event(now=now, minutes_ago=20, model="claude-3", labels={"feature": "chat"}, error=True, latency_ms=80),
        make_event(now=now, minutes_ago=10, model="gpt-4o", labels={"feature": "chat"}, correlation_id="c9"),
    ]
    seed(db_url, events)
    return db_url, events


def test_logs_table_and_json(seeded: tuple[str, list[LLMEvent]], capsys: pytest.CaptureFixture[str]) -> None:
    url, events = seeded
    code, out, err = run(capsys, "logs", "--database-url", url)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["TIME", "(UTC)", "EVENT"]
    assert [events[2].event_id in lines[1], events[1].event_id in lines[2], events[0].event_id in lines[3]] == [
        True
    ] * 3
    model_col = lines[0].index("MODEL")
    assert all(line[model_col:].split()[0] in ("gpt-4o", "claude-3") for line in lines[1:])  # aligned columns
    assert "error:rate_limit" in lines[2]

    code, out, _ = run(capsys, "logs", "--database-url", url, "--json", "--model", "gpt-4o", "--label", "feature=chat")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["event_id"] for r in rows] == [events[2].event_id]
    assert rows[0]["correlation_id"] == "c9"

    code, out, _ = run(capsys, "logs", "--database-url", url, "--json", "--errors", "--since", "25m")
    assert [json.loads(line)["event_id"] for line in out.splitlines()] == [events[1].event_id]
    code, out, _ = run(capsys, "logs", "--database-url", url, "--json", "--limit", "1", "--offset", "1")
    assert [json.loads(line)["event_id"] for line in out.splitlines()] == [events[1].event_id]


def test_show_prints_content_as_stored(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    exporter = SQLSpanExporter(config=fast_config(db_url))
    span = make_llm_span(content=True, labels={"feature": "x"})
    assert exporter.export([span]) is SpanExportResult.SUCCESS
    exporter.shutdown()
    event_id = span_to_event(span).event_id
    code, out, _ = run(capsys, "show", event_id, "--database-url", db_url)
    assert code == 0
    assert "event_id" in out and event_id in out
    assert "input_messages:" in out and "héllo [PII:EMAIL]" in out  # content as stored (redacted form)
    assert "tool_calls:" in out and '"lookup"' in out
    code, out, _ = run(capsys, "show", event_id, "--database-url", db_url, "--json")
    assert json.loads(out)["labels"] == {"feature": "x"}


def test_stats_table_and_json(seeded: tuple[str, list[LLMEvent]], capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = seeded
    code, out, _ = run(capsys, "stats", "--database-url", url)
    assert code == 0
    assert "by model" in out and "by label" in out and "feature=chat" in out
    code, out, _ = run(capsys, "stats", "--database-url", url, "--json")
    groups = [json.loads(line) for line in out.splitlines()]
    assert groups[0]["group"] == "total" and groups[0]["calls"] == 3 and groups[0]["errors"] == 1
    models = {g["key"]: g for g in groups if g["group"] == "model"}
    assert models["gpt-4o"]["calls"] == 2 and models["claude-3"]["error_rate"] == 1.0


def test_migrate_creates_and_reports(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "migrate", "--database-url", db_url)
    assert code == 0 and f"-> {head_revision()}" in out
    code, out, _ = run(capsys, "migrate", "--database-url", db_url)
    assert code == 0 and "already at revision" in out


def test_tail_follows_new_events(seeded: tuple[str, list[LLMEvent]], capsys: pytest.CaptureFixture[str]) -> None:
    url, events = seeded
    fresh = [make_event(model="tail-model") for _ in range(2)]

    def later() -> None:
        time.sleep(0.6)
        seed(url, fresh)

    writer = threading.Thread(target=later)
    writer.start()
    started = time.monotonic()
    code, out, _ = run(capsys, "tail", "--database-url", url, "-n", "1", "--count", "3", "--interval", "0.1",
                       "--max-seconds", "20", "--json")
    writer.join()
    assert code == 0 and time.monotonic() - started < 20
    got = [json.loads(line)["event_id"] for line in out.splitlines()]
    assert got[0] == events[2].event_id  # the last existing event first
    assert sorted(got[1:]) == sorted(e.event_id for e in fresh)


def test_tail_stops_after_max_seconds(seeded: tuple[str, list[LLMEvent]], capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = seeded
    started = time.monotonic()
    code, out, _ = run(capsys, "tail", "--database-url", url, "-n", "2", "--max-seconds", "0.5", "--interval", "0.1")
    assert code == 0 and time.monotonic() - started < 5
    assert len(out.splitlines()) == 3  # header + 2 rows


def test_exit_codes_and_messages(sqlite_url: str, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEANLLM_DATABASE_URL", raising=False)
    code, _, err = run(capsys, "logs")
    assert code == 2 and "--database-url" in err and "LEANLLM_DATABASE_URL" in err
    code, _, err = run(capsys, "logs", "--database-url", "mysql://x/y")
    assert code == 2 and "unsupported scheme" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "logs", "--database-url", sqlite_url)
    assert code == 1 and "no database file" in err
    code, _, err = run(capsys, "logs", "--since", "yesterday", "--database-url", sqlite_url)
    assert code == 2 and "invalid time" in err
    code, _, err = run(capsys, "nonsense")
    assert code == 2
    code, _, _ = run(capsys)
    assert code == 2
    assert run(capsys, "migrate", "--database-url", sqlite_url)[0] == 0
    code, _, err = run(capsys, "show", "nope", "--database-url", sqlite_url)
    assert code == 1 and err.strip() == "leanllm-otel: error: event 'nope' not found"
    monkeypatch.setenv("LEANLLM_DATABASE_URL", sqlite_url)
    assert run(capsys, "logs")[0] == 0  # falls back to the environment
    code, _, err = run(capsys, "logs", "--database-url", "postgresql://postgres:pw-secret@127.0.0.1:1/db")
    assert code == 1 and "pw-secret" not in err and len(err.strip().splitlines()) == 1


def test_installed_script_never_prints_a_traceback(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("leanllm-otel")
    if not script.exists():
        pytest.skip("console script not installed")
    env = {k: v for k, v in os.environ.items() if k != "LEANLLM_DATABASE_URL"}
    bad = subprocess.run([str(script), "logs", "--database-url", "postgresql://u@127.0.0.1:1/db"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and bad.stderr.startswith("leanllm-otel: error:")
    url = f"sqlite:///{tmp_path / 'x.db'}"
    ok = subprocess.run([str(script), "migrate", "--database-url", url], capture_output=True, text=True, timeout=60,
                        env=env)
    assert ok.returncode == 0, ok.stderr
    usage = subprocess.run([str(script), "logs", "--limit", "-3", "--database-url", url], capture_output=True,
                           text=True, timeout=60, env=env)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_command_modules_are_pluggable() -> None:
    assert "leanllm_otel.cli.store_commands" in COMMAND_MODULES
    parser = build_parser(["leanllm_otel.cli.store_commands"])
    args = parser.parse_args(["logs", "--label", "a=b", "--label", "c=d=e"])
    assert args.label == [("a", "b"), ("c", "d=e")]


def test_logs_takes_the_viewers_filters(sqlite_url: str, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from leanllm_otel import score
    from loopback.viewer_data import SEARCH_WORD, seed

    ids = seed(sqlite_url, count=8)
    assert main(["logs", "--database-url", sqlite_url, "--search", SEARCH_WORD, "--json"]) == 0
    assert [json.loads(line)["event_id"] for line in capsys.readouterr().out.splitlines()] == [ids["searchable"]]
    assert main(["logs", "--database-url", sqlite_url, "--user", "user-1", "--min-latency-ms", "105", "--json"]) == 0
    assert [json.loads(line)["event_id"] for line in capsys.readouterr().out.splitlines()] == ["ev-00005"]
    monkeypatch.setenv("LEANLLM_DATABASE_URL", sqlite_url)
    assert score(ids["error"], "relevance", 0.2) is not None
    assert main(["logs", "--database-url", sqlite_url, "--score", "relevance<0.5", "--json"]) == 0
    assert [json.loads(line)["event_id"] for line in capsys.readouterr().out.splitlines()] == [ids["error"]]
    assert main(["logs", "--database-url", sqlite_url, "--score", "relevance<cheap"]) == 2
    assert main(["logs", "--database-url", sqlite_url, "--since", "2x"]) == 2
