"""Every script in examples/ runs as a user would run it, and shows what it promises."""

from __future__ import annotations

import os
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    for variable in list(env):
        if variable.startswith(("LEANLLM_", "OTEL_")) or variable == "PYTEST_CURRENT_TEST":
            env.pop(variable)
        elif variable.endswith(("_API_KEY", "_API_BASE")) or variable == "OPENAI_BASE_URL":
            env.pop(variable)  # no provider key or endpoint: the demo is offline
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_demo_writes_events_to_sqlite_and_shows_them(tmp_path: Path) -> None:
    """The README's first command as typed (no arguments, no provider key, a directory without a database)."""
    database = tmp_path / "leanllm_demo.db"
    result = _run("demo.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "completion: Hello from the loopback provider!" in out
    assert "stream:     Hello from the loopback provider!" in out
    assert "RateLimitError" in out
    assert "leanllm-otel logs" in out and "leanllm-otel stats" in out
    assert "error:rate_limit" in out  # the error event is listed by the CLI

    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT status, stream, correlation_id FROM leanllm_events").fetchall()
    assert len(rows) == 4
    assert sorted(status for status, _, _ in rows) == ["error", "ok", "ok", "ok"]
    assert sum(1 for _, stream, _ in rows if stream) == 1
    assert len({cid for _, _, cid in rows}) == 1  # one trace() block, one correlation id
    # Content capture is on in the demo, in the default `redacted` form: the planted email never reaches the file.
    assert b"ada@example.com" not in database.read_bytes()

    # The last line is the one command that opens the viewer on this database; that viewer lists the four events.
    last = out.strip().splitlines()[-1]
    command = shlex.split(last.split(": ", 1)[1])
    assert Path(command[0]).name == "leanllm-otel" and command[1:3] == ["ui", "--database-url"]
    assert command[3] == f"sqlite:///{database.resolve()}" and len(command) == 4
    from leanllm_otel.ui import UIServer

    with UIServer(command[3], port=0, emitter=None) as viewer:
        page = httpx.get(viewer.url + "/", timeout=10).text
    assert page.count("<tr data-id=") == 4 and "rate-limited" in page



def test_every_example_script_is_run_by_a_test() -> None:
    """Each ``examples/*.py`` is run as its own process by a test that checks what it prints or stores."""
    tests = Path(__file__).resolve().parent
    own = Path(__file__).read_text(encoding="utf-8").split("def test_every_example_script_is_run_by_a_test", 1)[0]
    others = "".join(p.read_text(encoding="utf-8") for p in tests.glob("test_*.py") if p.name != Path(__file__).name)
    for script in sorted(EXAMPLES.glob("*.py")):
        if script.name.startswith("client_"):
            assert 'glob("client_*.py")' in others, script.name  # tests/test_client_examples.py runs each one
        else:
            assert f'"{script.name}"' in own + others, script.name
