"""Each ``examples/client_*.py`` script runs to completion as its own process (offline)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("client_*.py"))


def test_there_are_client_examples() -> None:
    assert EXAMPLES


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEANLLM_", "PYTEST_"))}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    completed = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "raised" not in completed.stderr  # no hook or internal error along the way
    if script.name == "client_quickstart.py":
        assert "answer: Hi there!" in completed.stdout and "stored events in this trace: 2" in completed.stdout
