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
