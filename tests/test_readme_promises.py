"""The README's promises that no feature test owns: its two commands, its code blocks run as a user would run them
(against the loopback OpenAI-compatible provider), its configuration table's defaults, its version table, and the
paths its layout tables name. Promises a feature owns are proven in that feature's test file."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
ARCHITECTURE = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def _user_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no LEANLLM_* / OTEL_* left over from the test process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEANLLM_", "OTEL_", "PYTEST_"))}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env.update(extra)
    return env


def _run_python(code: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=180)


# === the two commands ==========================================================================================


def _commands() -> list[str]:
    return [block.strip() for block in _blocks(README.split("## Two commands", 1)[1].split("\n## ", 1)[0], "bash")]


def test_the_readme_test_command_is_what_ci_step_5_runs() -> None:
    _, suite = _commands()
    assert suite == "bash .ci/run"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    step5 = ci.split('echo "ci: step 5:', 1)[1].split('echo "ci: step 6:', 1)[0]
    stated = re.search(r"`\.ci/run` runs `([^`]+)`", README)
    assert stated is not None
    assert f"{stated.group(1)} 2>&1" in step5  # the whole suite, exactly the command the README names
    assert "the README's test command" in step5


def test_the_readme_demo_command_names_real_extras_and_files() -> None:
    demo, _ = _commands()
    install = re.search(r"pip install -q -e '\.\[([a-z,]+)\]' -c (\S+)", demo)
    assert install is not None
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert set(install.group(1).split(",")) <= set(extras)
    assert (ROOT / install.group(2)).is_file()
    script = demo.rsplit(".venv/bin/python ", 1)[1]
    assert (ROOT / script).is_file() and script == "examples/demo.py"


def test_the_readme_demo_runs_from_a_clean_directory_without_arguments_or_api_key(tmp_path: Path) -> None:
    """The first command as typed: no arguments, no provider key in the environment, a directory with no database."""
    env = _user_env()
    for key in [k for k in env if k.endswith("_API_KEY") or k.endswith("_API_BASE") or k == "OPENAI_BASE_URL"]:
        env.pop(key)
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "demo.py")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    database = tmp_path / "leanllm_demo.db"
    assert database.is_file()
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM leanllm_events").fetchone() == (4,)
    out = result.stdout
    assert "leanllm-otel logs" in out and "leanllm-otel stats" in out and "error:rate_limit" in out
    last = shlex.split(out.strip().splitlines()[-1].split(": ", 1)[1])
    assert last[1:] == ["ui", "--database-url", f"sqlite:///{database.resolve()}"]


# === the python code blocks ====================================================================================


def test_every_readme_python_block_is_valid_python() -> None:
    blocks = _blocks(README, "python")
    assert len(blocks) >= 5
    for block in blocks:
        compile(block, "README.md", "exec")


@pytest.fixture
def provider_env(openai_server: Any) -> dict[str, str]:
    """A user's shell whose OpenAI provider is the loopback server (LiteLLM reads ``OPENAI_BASE_URL``)."""
    return _user_env(OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=openai_server.base_url)


def test_the_readme_opening_snippet_stores_an_unchanged_litellm_call(tmp_path: Path,
                                                                     provider_env: dict[str, str]) -> None:
    snippet = _blocks(README, "python")[0]
    assert "configure(database_url=\"sqlite:///events.db\")" in snippet
    code = snippet + (
        "import litellm\n"
        "print(litellm.completion(model='gpt-4o-mini', messages=[{'role': 'user', 'content': 'Say hi.'}])"
        ".choices[0].message.content)\n"
    )
    result = _run_python(code, tmp_path, provider_env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "echo: Say hi."
    # No explicit flush: the bounded shutdown registered at exit writes the event.
    with sqlite3.connect(tmp_path / "events.db") as connection:
        rows = connection.execute("SELECT model, status FROM leanllm_events").fetchall()
    assert rows == [("gpt-4o-mini", "ok")]


def test_the_readme_client_snippet_runs_and_its_hooks_fire(tmp_path: Path, provider_env: dict[str, str]) -> None:
    snippet = next(block for block in _blocks(README, "python") if "client = LeanLLM(" in block)
    last = snippet.rstrip().splitlines()[-1]
    code = snippet.replace(last, f"last, recent, listed = {last}") + (
        "print('last', last.model, last.labels, last.redaction_mode)\n"
        "print('recent', len(recent), 'listed', len(listed))\n"
        "client.close()\n"
    )
    result = _run_python(code, tmp_path, provider_env)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"\d+\.\d+(e-\d+)?", lines[0]), lines  # post_call_hook printed the event's cost
    assert "last gpt-4o-mini {'feature': 'demo'} redacted" in lines
    assert "recent 1 listed 1" in lines
    with sqlite3.connect(tmp_path / "events.db") as connection:
        assert connection.execute("SELECT count(*) FROM leanllm_events").fetchone() == (1,)


# === configuration =============================================================================================


def _config_table() -> list[tuple[str, str, str]]:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(LEANLLM_[A-Z_]+)` \| `([a-z_]+)` \| (.+) \|$", section, flags=re.M)


def _documented_default(cell: str) -> Any:
    head = cell.split(" (", 1)[0].strip()
    if head.startswith(("none", "unset")):
        return None
    if head == "empty":
        return ()
    literal = re.match(r"`([^`]+)`", head)
    assert literal is not None, cell
    value = literal.group(1)
    if value in ("true", "false"):
        return value == "true"
    if value == "{}":
        return {}
    if re.fullmatch(r"[0-9.]+", value):
        return float(value)
    return value


def test_the_readme_configuration_table_states_the_real_defaults() -> None:
    from leanllm_otel import LeanLLMConfig
    from leanllm_otel.config import ENV_VARS

    rows = _config_table()
    assert {field for _, field, _ in rows} == set(LeanLLMConfig.model_fields)
    for variable, field, cell in rows:
        assert ENV_VARS[field] == variable
        info = LeanLLMConfig.model_fields[field]
        actual = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
        documented = _documented_default(cell)
        if isinstance(documented, float) and not isinstance(actual, bool):
            assert float(actual) == documented, field
        else:
            assert actual == documented, field


def test_database_url_with_api_key_is_a_value_error_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    from leanllm_otel import LeanLLMConfig

    with pytest.raises(ValueError) as direct:
        LeanLLMConfig(database_url="sqlite:///x.db", leanllm_api_key="lllm_x")
    monkeypatch.setenv("LEANLLM_DATABASE_URL", "sqlite:///x.db")
    monkeypatch.setenv("LEANLLM_API_KEY", "lllm_x")
    with pytest.raises(ValueError) as from_env:
        LeanLLMConfig.from_env()
    for error in (direct, from_env):
        text = str(error.value)
        assert all(name in text for name in ("LEANLLM_DATABASE_URL", "LEANLLM_API_KEY", "database_url",
                                             "leanllm_api_key"))
        assert "lllm_x" not in text


# === versions ==================================================================================================


def test_the_readme_version_table_matches_the_pins_and_the_tested_range() -> None:
    from leanllm_otel.instrumentation.litellm_compat import TESTED_RANGE

    pins = dict(re.findall(r"^([a-z-]+)==(\S+)$", (ROOT / "constraints.txt").read_text(encoding="utf-8"), re.M))
    pinned = re.search(r"^\| `pinned` \(`\.venv`\) \| ([0-9.]+) \| ([0-9.]+) \(instrumentation ([0-9a-z.]+)\)",
                       README, re.M)
    assert pinned is not None
    assert pinned.groups() == (pins["litellm"], pins["opentelemetry-sdk"], pins["opentelemetry-instrumentation"])
    assert pins["opentelemetry-api"] == pins["opentelemetry-sdk"]
    assert f"outside the tested range ({TESTED_RANGE[0]} to {TESTED_RANGE[1]})" in README
    assert f"Tested against LiteLLM {TESTED_RANGE[0]} to {TESTED_RANGE[1]}" in README
    noxfile = (ROOT / "noxfile.py").read_text(encoding="utf-8")
    for cell in re.findall(r"^\| `([a-z-]+)` \|", README.split("### Tested versions", 1)[1], re.M):
        if cell != "pinned":
            assert f'"{cell}": Cell(' in noxfile, cell
    assert "litellm[proxy]==1.80.0" in noxfile and "opentelemetry-sdk==1.40.0" in noxfile


def test_the_readme_entry_points_are_registered() -> None:
    points = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["entry-points"]
    for group in ("opentelemetry_configurator", "opentelemetry_traces_exporter", "opentelemetry_instrumentor"):
        assert "leanllm" in points[group], group
        assert f"`{group}`" in README


# === layout ====================================================================================================


def test_every_path_in_the_readme_layout_exists() -> None:
    """A row's first path is relative to the checkout; the names after it sit beside it."""
    layout = README.split("## Layout", 1)[1]
    rows = re.findall(r"^\| (`[^|]+`) \|", layout, flags=re.M)
    assert len(rows) > 10
    missing = []
    for row in rows:
        first, *others = re.findall(r"`([^`]+)`", row)
        beside = (ROOT / first.rstrip("/")).parent
        missing += [first] if not (ROOT / first).exists() else []
        missing += [name for name in others if not (beside / name).exists()]
    assert missing == []


def test_every_module_architecture_names_exists() -> None:
    package = ROOT / "src" / "leanllm_otel"
    names = set(re.findall(r"`([a-z_]+(?:/[a-z_]+)*(?:\.py|/))`", ARCHITECTURE))
    assert len(names) > 30
    missing = []
    for name in names:
        candidates = [package / name, ROOT / name, *(p for p in package.rglob(name.rstrip("/")))]
        if not any(candidate.exists() for candidate in candidates):
            missing.append(name)
    assert missing == []


# === "Instrument only": your own provider with LeanLLMSampler ===================================================


@pytest.fixture
def no_leanllm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("LEANLLM_", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP")):
            monkeypatch.delenv(name)


def test_the_readme_sampler_snippet_keeps_every_error_through_a_ten_percent_head_sampler(
    openai_server: Any, no_leanllm_env: None
) -> None:
    """``TracerProvider(sampler=LeanLLMSampler(ParentBased(TraceIdRatioBased(0.1))))`` then
    ``configure(tracer_provider=provider, exporters=[...])``: "errors survive the 10%"; the returned ``Pipeline``
    has ``force_flush()``, ``shutdown()``, ``counters`` and ``dropped_events_count``."""
    import litellm
    import openai
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    from leanllm_otel import LeanLLMSampler, configure
    from leanllm_otel import semconv as sc

    provider = TracerProvider(sampler=LeanLLMSampler(ParentBased(TraceIdRatioBased(0.1))))
    exporter = InMemorySpanExporter()
    pipeline = configure(tracer_provider=provider, exporters=[exporter])
    try:
        assert pipeline.exporters == (exporter,)  # no store: no LEANLLM_* asks for one
        for index in range(30):
            model = "openai/err-429" if index % 3 == 0 else "openai/gpt-4o-mini"
            with contextlib.suppress(openai.OpenAIError):
                litellm.completion(model=model, api_base=openai_server.base_url, api_key="sk-test", max_retries=0,
                                   messages=[{"role": "user", "content": f"q{index}"}])
        assert pipeline.force_flush(10_000)
        spans = [s for s in exporter.get_finished_spans() if sc.LEANLLM_REQUEST_ID in (s.attributes or {})]
        errors = [s for s in spans if s.status.status_code.name == "ERROR"]
        assert len(errors) == 10  # every error, though the head sampler drops ~90% of the traces
        assert len(spans) - len(errors) < 20  # the successes went through the 10% head sampler
        counters = pipeline.counters
        assert counters["kept"] + counters["kept_errors"] == len(spans) and counters["kept_errors"] >= 1
        assert pipeline.dropped_events_count == 0 == counters["dropped"]
    finally:
        pipeline.shutdown(2000)


# === enumerations the README spells out ==========================================================================


def _backticked_after(marker: str, until: str) -> set[str]:
    text = README.split(marker, 1)[1].split(until, 1)[0]
    return set(re.findall(r"`([a-z_]+)`", text))


def test_the_readme_error_kinds_are_the_error_kinds() -> None:
    from leanllm_otel.errors import ErrorKind

    documented = _backticked_after("`leanllm.error.kind` (", ") |")
    assert documented == {kind.value for kind in ErrorKind}


def test_the_readme_stream_outcomes_are_the_stream_outcomes() -> None:
    from leanllm_otel import semconv as sc

    documented = _backticked_after("`leanllm.stream.outcome` (", ")")
    outcomes = {value for name, value in vars(sc).items() if name.startswith("STREAM_") and isinstance(value, str)}
    assert documented == outcomes


def test_the_readme_injection_families_are_the_reported_types() -> None:
    from leanllm_otel.processing.detection.injection import INJECTION_SPECS
    from leanllm_otel.processing.detection.scorer import SCORER_TYPE

    section = README.split("Prompt injection is reported", 1)[1].split("Measured", 1)[0]
    documented = set(re.findall(r"`([A-Z_]+)`", section))
    assert documented == {spec.type for spec in INJECTION_SPECS} | {SCORER_TYPE}


def test_every_cli_command_the_readme_lists_exists() -> None:
    """``leanllm-otel logs | show ID | ... | score ID NAME VALUE`` and ``report --format md|json|html`` (exit codes:
    ``tests/test_cli.py::test_exit_codes_and_messages``)."""
    from leanllm_otel.cli import build_parser

    listed = README.split("## CLI", 1)[1].split("` over the SQL store", 1)[0]
    documented = {part.split()[0] for part in listed.split("`leanllm-otel ", 1)[1].split(" | ")}
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert commands is not None and documented == set(commands)
    report = commands["report"]
    assert next(a for a in report._actions if a.dest == "format").choices == ("md", "json", "html")


def test_the_readme_ingest_and_viewer_defaults_are_the_real_ones() -> None:
    """"within 10 s (``header_timeout_s``) and its body within 60 s, at most 32 requests are served at once";
    ``serve --port 4319`` in the example; the viewer on http://127.0.0.1:4320."""
    import inspect

    from leanllm_otel.cli import build_parser
    from leanllm_otel.ingest import IngestServer

    defaults = {name: p.default for name, p in inspect.signature(IngestServer.__init__).parameters.items()}
    assert (defaults["header_timeout_s"], defaults["body_timeout_s"], defaults["max_concurrent_requests"]) == (
        10.0, 60.0, 32)
    assert "within 10 s (`header_timeout_s`) and its body within 60 s, at most 32 requests" in README
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert commands is not None
    ports = {name: next(a for a in commands[name]._actions if a.dest == "port").default for name in ("serve", "ui")}
    assert ports == {"serve": 4319, "ui": 4320} and "http://127.0.0.1:4320" in README


def test_every_name_the_architecture_owner_table_gives_is_defined_in_its_module() -> None:
    """ARCHITECTURE.md's "which module owns which rule": a name given next to modules is defined in one of them
    (``a.b`` in module ``a``)."""
    package = ROOT / "src" / "leanllm_otel"
    table = ARCHITECTURE.split("## Which module owns which rule", 1)[1]
    rows = re.findall(r"^\| [^|]+ \| (.+) \|$", table, flags=re.M)
    assert len(rows) > 20
    missing = []
    checked = 0
    for row in rows:
        dotted = {n.rsplit(".", 1)[0].split(".")[-1] + ".py" for n in re.findall(r"`([a-z_]+\.[a-z_]+)`", row)}
        modules = [*re.findall(r"`([a-z_/]+\.py)`", row), *(d for d in dotted if d != "py.py")]
        paths = {p for m in modules for p in [package / m, *package.rglob(Path(m).name)] if p.is_file()}
        sources = [p.read_text(encoding="utf-8") for p in paths]
        for name in re.findall(r"`([A-Za-z_][A-Za-z0-9_.]*)`", row):
            if name.endswith(".py") or name in ("metadata", "hashed", "redacted", "full"):
                continue
            name = name.rsplit(".", 1)[-1]
            # defined there, or (a name "built in" a module) imported there
            defined = re.compile(
                rf"^\s*(?:async def|def|class) {name}\b|^\s*{name}\s*[:=]|^from \S+ import .*\b{name}\b", re.M
            )
            checked += 1
            if not any(defined.search(source) for source in sources):
                missing.append(name)
    assert checked > 15 and missing == []
