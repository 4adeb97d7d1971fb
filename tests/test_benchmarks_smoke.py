"""The benchmark command runs end to end with tiny counts and writes its three outputs.

Benchmarks are not tests: nothing here looks at a timing. It checks that ``benchmarks/run.py --quick`` measures
every configuration it promises (bare, ours sampled-in / sampled-out / redacted, the span floor), that the
instrumented configurations really exported spans, and that the JSON, the markdown table and the PNG appear.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "benchmarks" / "run.py"


@pytest.mark.timeout(600)
def test_quick_run_writes_json_markdown_and_plot(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LEANLLM_"))}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    done = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--no-peers", "--no-postgres", "--out", str(tmp_path), "--name", "smoke"],
        capture_output=True,
        text=True,
        timeout=540,
        env=env,
        cwd=str(ROOT),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    results = json.loads((tmp_path / "smoke.json").read_text())
    assert results["quick"] is True
    overhead = {k: v for k, v in results["cases"].items() if v["section"] == "overhead"}
    assert {v["workload"] for v in overhead.values()} == {
        "mock_sync", "mock_async", "http_sync", "http_async", "http_stream"
    }
    for entry in overhead.values():
        configs = entry["configs"]
        assert {"bare", "ours_in", "ours_out"} <= set(configs), entry
        # Sampled-in exports one span per call; sampled-out creates one and exports none; bare exports nothing.
        assert configs["ours_in"]["spans_per_call"] == pytest.approx(1.0)
        assert configs["ours_out"]["spans_per_call"] == 0
        assert configs["ours_out"]["spans_created_per_call"] == pytest.approx(1.0)
        assert configs["bare"]["spans_per_call"] == 0
        assert "added_p50_us" in configs["ours_in"] and "added_cpu_per_call_us" in configs["ours_in"]
    sections = {v["section"] for v in results["cases"].values()}
    assert {"floor", "content", "prompt_size", "threads", "tasks"} <= sections
    floor = next(v for v in results["cases"].values() if v["section"] == "floor")
    assert floor["configs"]["floor"]["spans_per_call"] == pytest.approx(1.0)
    assert {row["sink"] for row in results["throughput"]} == {"sqlite", "service", "otlp"}
    for row in results["throughput"]:
        assert row["exported"] + row["dropped"] >= row["n"] * 0.99, row
    assert any(t["target"].startswith("caller added p50") for t in results["targets"])

    table = (tmp_path / "smoke.md").read_text()
    assert "## Per-call overhead" in table and "## Targets" in table and "leanllm-otel sampled-in" in table
    assert "## Targets" in done.stdout  # the table is printed too

    pytest.importorskip("matplotlib")  # the `bench` extra
    assert (tmp_path / "smoke.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
