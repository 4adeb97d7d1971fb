"""Import rules between layers: the guardrails implement the instrumentation's call gate without importing it."""

from __future__ import annotations

import ast
from pathlib import Path

import leanllm_otel

PACKAGE = Path(leanllm_otel.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_guardrails_import_nothing_from_the_instrumentation() -> None:
    offenders = {
        f"{path.name}: {name}"
        for path in sorted((PACKAGE / "guardrails").glob("*.py"))
        for name in _imports(path)
        if name == "leanllm_otel.instrumentation" or name.startswith("leanllm_otel.instrumentation.")
    }
    assert offenders == set()


def test_the_guard_is_a_call_gate_and_the_instrumentation_owns_the_protocol() -> None:
    from leanllm_otel.guardrails.guard import CallGuard, Guard
    from leanllm_otel.instrumentation import gate

    for name in ("admit", "call_ended"):
        assert callable(getattr(Guard, name)), name
    for name in ("monitor", "refusal", "refusal_attributes"):
        assert name in CallGuard.__slots__, name
    assert "leanllm_otel.guardrails" not in " ".join(_imports(Path(gate.__file__)))


def _modules_after(statement: str) -> set[str]:
    import json
    import subprocess
    import sys

    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_the_guard_imports_no_instrumentation_module() -> None:
    loaded = _modules_after("import leanllm_otel.guardrails.guard")
    assert {m for m in loaded if m.startswith("leanllm_otel.instrumentation")} == set()


def test_the_call_path_does_not_import_the_processor_or_the_guardrails() -> None:
    loaded = _modules_after("import leanllm_otel.instrumentation.invocation")
    assert "leanllm_otel.processing.processor" not in loaded
    assert {m for m in loaded if m.startswith("leanllm_otel.guardrails")} == set()


def test_the_instrumentor_entry_point_loads_only_the_instrumentor() -> None:
    loaded = _modules_after(
        "from importlib.metadata import entry_points\n"
        "(point,) = [p for p in entry_points(group='opentelemetry_instrumentor') if p.name == 'leanllm']\n"
        "assert point.load().__name__ == 'LeanLLMInstrumentor'"
    )
    assert "leanllm_otel.instrumentation.instrumentor" in loaded
    heavy = {"leanllm_otel.client", "leanllm_otel.pipeline", "leanllm_otel.processing.processor", "sqlalchemy"}
    assert heavy & loaded == set()


def test_the_entry_point_names_the_instrumentor_module() -> None:
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text(encoding="utf-8"))
    entry = pyproject["project"]["entry-points"]["opentelemetry_instrumentor"]["leanllm"]
    assert entry == "leanllm_otel.instrumentation.instrumentor:LeanLLMInstrumentor"


def test_every_public_name_still_imports_from_the_package() -> None:
    import importlib

    package = importlib.import_module("leanllm_otel")
    for name in package.__all__:
        assert getattr(package, name) is not None, name
    namespace: dict[str, object] = {}
    exec(f"from leanllm_otel import {', '.join(package.__all__)}", namespace)
    assert set(package.__all__) <= set(namespace)
    assert set(package.__all__) <= set(dir(package))
