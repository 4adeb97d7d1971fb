"""Issue 19, item 5: terminal and Markdown injection through stored fields.

``leanllm-otel logs``, ``tail``, ``stats`` and ``show`` printed stored fields raw: a model, an environment, a label
or an error message carrying ``ESC]0;...BEL`` (window title), ``ESC[2J`` (clear screen), an OSC 8 link or the
8-bit CSI (U+009B) reached the terminal verbatim; a provider 400 echoing the prompt is enough. ``report --format
md`` carried ``<script>`` and ``<img onerror>`` unescaped.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leanllm_otel.cli import main
from leanllm_otel.event import LLMEvent
from leanllm_otel.ingest.sink import SQLEventSink

PAYLOADS = {
    "title": "\x1b]0;owned\x07",
    "clear": "\x1b[2J\x1b[H",
    "osc8": "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "csi8": "\x9b2J",
    "cr": "fake\rreal",
    "bidi": "\u202egnp.exe",
    "del": "a\x7fb",
}
HTML = {"script": "<script>alert(1)</script>", "img": '<img src=x onerror="alert(1)">', "pipe": "a|b|c"}
# Nothing of these may reach a terminal: C0 but tab and newline, DEL, C1, bidi overrides.
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _event(event_id: str, text: str) -> LLMEvent:
    return LLMEvent(event_id=event_id, timestamp=datetime.now(timezone.utc), model=f"gpt{text}",
                    response_model=f"resp{text}", environment=f"env{text}", labels={f"k{text}": f"v{text}"},
                    status="error", error_type="BadRequestError", error_kind="bad_request",
                    error_message=f"provider said: {text}", input_messages=[{"role": "user", "parts": [
                        {"type": "text", "content": f"prompt {text}"}]}], redaction_mode="full", content_captured=True)


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'tty.db'}"
    sink = SQLEventSink(url)
    try:
        sink.migrate(30)
        sink.write([_event(name, text) for name, text in {**PAYLOADS, **HTML}.items()])
    finally:
        sink.close()
    return url


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    out, err = capsys.readouterr()
    return out + err


COMMANDS = [
    ("logs",), ("logs", "--json"), ("tail", "--lines", "10", "--count", "10"),
    ("tail", "--lines", "10", "--count", "10", "--json"), ("stats",), ("stats", "--json"),
    *[("show", name) for name in PAYLOADS], *[("show", name, "--json") for name in PAYLOADS],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_no_control_sequence_reaches_the_terminal(command: tuple[str, ...], store: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    output = _run(capsys, *command, "--database-url", store)
    assert not FORBIDDEN.search(output), repr(FORBIDDEN.findall(output)[:5])
    if "--json" in command:
        for line in output.splitlines():
            json.loads(line)  # still JSON
    else:
        assert "\\x1b" in output or "\\x9b" in output or "\\u202e" in output or "\\r" in output or "\\x7f" in output


def test_json_lines_round_trip_the_stored_values(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    output = _run(capsys, "logs", "--json", "--limit", "100", "--database-url", store)
    by_id = {event["event_id"]: event for event in map(json.loads, output.splitlines())}
    for name, text in PAYLOADS.items():
        assert by_id[name]["error_message"] == f"provider said: {text}"
        assert by_id[name]["labels"] == {f"k{text}": f"v{text}"}


def test_tables_keep_one_row_per_event(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    output = _run(capsys, "logs", "--limit", "100", "--database-url", store)
    assert len(output.splitlines()) == 1 + len(PAYLOADS) + len(HTML)  # header + one line each (cr, no newline)


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_the_report_escapes_html_pipes_and_controls(fmt: str, store: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    printed = _run(capsys, "report", "--since", "1d", "--format", fmt, "--database-url", store)
    written = tmp_path / f"report.{fmt}"
    assert main(["report", "--since", "1d", "--format", fmt, "--database-url", store, "-o", str(written)]) == 0
    for text in (printed, written.read_text(encoding="utf-8")):
        assert not FORBIDDEN.search(text)
        if fmt == "json":  # data, not markup: the values as stored, controls as JSON escapes
            assert json.loads(text)["by_model"]
            continue
        assert "<script>" not in text and "<img" not in text
        if fmt == "md":
            assert "&lt;script&gt;" in text
            _assert_tables_are_rectangular(text)


def _assert_tables_are_rectangular(text: str) -> None:
    """Every row of a Markdown table has as many cell separators as its header: no value split a row."""
    expected = None
    for line in text.splitlines():
        if not line.startswith("|"):
            expected = None
            continue
        separators = len(re.findall(r"(?<!\\)\|", line))
        expected = separators if expected is None else expected
        assert separators == expected, line


# --- property: any stored text, every output path ---------------------------------------------------------------

_ANY = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from(
    ["\x1b", "\x07", "\x9b", "\r", "\u202e", "|", "<", "\n", "\t", "\x00"]), min_size=1, max_size=30)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(texts=st.lists(_ANY, min_size=1, max_size=3))
def test_any_stored_text_prints_safely(texts: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'prop.db'}"
    sink = SQLEventSink(url)
    try:
        sink.migrate(30)
        ids = [f"p-{abs(hash(text))}-{i}" for i, text in enumerate(texts)]
        sink.write([_event(event_id, text) for event_id, text in zip(ids, texts, strict=True)])
    finally:
        sink.close()
    outputs: list[Any] = [_run(capsys, "logs", "--limit", "1000", "--database-url", url),
                          _run(capsys, "stats", "--database-url", url),
                          _run(capsys, "report", "--since", "1d", "--database-url", url)]
    outputs += [_run(capsys, "show", event_id, "--database-url", url) for event_id in ids]
    for output in outputs:
        assert not FORBIDDEN.search(output), repr(output)
    _assert_tables_are_rectangular(outputs[2])
    shown = _run(capsys, "show", ids[0], "--json", "--database-url", url)
    assert json.loads(shown)["error_message"] == f"provider said: {texts[0]}"
