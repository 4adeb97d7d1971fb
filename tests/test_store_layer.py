"""Import rules of the layers below the entry points: the store imports only downwards, and no lower layer imports
``pipeline``, ``client``, ``cli`` or ``distro`` (the entry points)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import leanllm_otel

PACKAGE = Path(leanllm_otel.__file__).parent
ENTRY_POINTS = ("leanllm_otel.pipeline", "leanllm_otel.client", "leanllm_otel.cli", "leanllm_otel.distro")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
    return names


def _offenders(folder: str, forbidden: tuple[str, ...]) -> set[str]:
    return {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in sorted((PACKAGE / folder).rglob("*.py"))
        for name in _imports(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    }


@pytest.mark.parametrize("folder", ["store", "exporters", "processing", "instrumentation", "guardrails", "ingest"])
def test_lower_layers_never_import_the_entry_points(folder: str) -> None:
    assert _offenders(folder, ENTRY_POINTS) == set()


def test_the_store_imports_nothing_from_the_layers_above_it() -> None:
    above = ("leanllm_otel.exporters", "leanllm_otel.guardrails", "leanllm_otel.ui", "leanllm_otel.ingest")
    assert _offenders("store", above + ENTRY_POINTS) == set()


def test_the_sql_exporter_and_the_ingest_sink_share_the_store_writer() -> None:
    assert "leanllm_otel.exporters.sql" not in _imports(PACKAGE / "ingest" / "sink.py")
    assert "leanllm_otel.store.writer" in _imports(PACKAGE / "ingest" / "sink.py")
    assert "leanllm_otel.store.writer" in _imports(PACKAGE / "exporters" / "sql.py")


def test_the_query_api_loads_on_first_use_of_the_package_name() -> None:
    import subprocess
    import sys

    code = (
        "import sys, leanllm_otel.store.schema\n"
        "print('leanllm_otel.store.queries' in sys.modules)\n"
        "from leanllm_otel.store import EventStore\n"
        "print(EventStore.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "leanllm_otel.store.queries"]
