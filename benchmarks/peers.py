"""The peer instrumentations, each in its own virtual environment under ``benchmarks/.venvs/``.

Every venv gets LiteLLM 1.100.5 (``-c constraints.txt``) and, where they overlap, the same versions of LiteLLM's
dependencies as the project venv (a frozen copy of it is passed as a second constraints file), so the one bare
LiteLLM baseline measured in the project venv is a fair pair for every peer. A venv is rebuilt only when its
requirement list changes (a ``.ready`` marker records it).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENVS = BENCH_DIR / ".venvs"


@dataclass(frozen=True)
class Peer:
    """One peer instrumentation: its venv name, what to install, and how the worker sets it up (``setup``)."""

    name: str
    label: str
    requirements: tuple[str, ...]
    setup: str  # the worker's setup kind (see worker.py)
    exporter_note: str


PEERS: tuple[Peer, ...] = (
    Peer(
        "openinference",
        "OpenInference",
        ("litellm==1.100.5", "openinference-instrumentation-litellm", "opentelemetry-sdk"),
        "openinference",
        "TracerProvider + BatchSpanProcessor(InMemorySpanExporter); default TraceConfig (content captured)",
    ),
    Peer(
        "openllmetry",
        "OpenLLMetry",
        ("litellm==1.100.5", "opentelemetry-instrumentation-litellm", "opentelemetry-sdk"),
        "openllmetry",
        "TracerProvider + BatchSpanProcessor(InMemorySpanExporter); defaults (TRACELOOP_TRACE_CONTENT on)",
    ),
    Peer(
        "litellm_otel",
        "LiteLLM otel callback",
        ("litellm==1.100.5", "opentelemetry-sdk", "opentelemetry-exporter-otlp"),
        "litellm_otel",
        'litellm.callbacks=["otel"] on a global TracerProvider + BatchSpanProcessor(InMemorySpanExporter)',
    ),
)


def venv_python(peer: Peer) -> Path:
    return VENVS / peer.name / "bin" / "python"


def _frozen_constraints() -> Path:
    """The project venv's pinned versions (minus the project itself), so shared dependencies match."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = [
        line
        for line in out.splitlines()
        if "==" in line and not line.startswith(("-e", "leanllm")) and " @ " not in line
    ]
    VENVS.mkdir(parents=True, exist_ok=True)
    path = VENVS / "project-freeze.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _marker(peer: Peer) -> str:
    return hashlib.sha256("\n".join(peer.requirements).encode()).hexdigest()


def is_ready(peer: Peer) -> bool:
    marker = VENVS / peer.name / ".ready"
    return venv_python(peer).exists() and marker.exists() and marker.read_text().strip() == _marker(peer)


def build(peer: Peer, log: Path | None = None, timeout_s: float = 900.0) -> Path:
    """Create (or reuse) the peer's venv; returns its python. Raises ``RuntimeError`` when pip fails."""
    python = venv_python(peer)
    if is_ready(peer):
        return python
    target = VENVS / peer.name
    VENVS.mkdir(parents=True, exist_ok=True)
    log = log or (VENVS / f"{peer.name}.log")
    started = time.monotonic()
    with log.open("w") as out:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(target)], check=True, stdout=out, stderr=out)
        base = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        frozen = _frozen_constraints()
        attempts = (
            [*base, *peer.requirements, "-c", str(ROOT / "constraints.txt"), "-c", str(frozen)],
            [*base, *peer.requirements, "-c", str(ROOT / "constraints.txt")],  # a peer pin clashed with ours
        )
        for command in attempts:
            remaining = timeout_s - (time.monotonic() - started)
            result = subprocess.run(command, stdout=out, stderr=out, timeout=max(remaining, 1.0))
            if result.returncode == 0:
                (target / ".ready").write_text(_marker(peer))
                return python
    raise RuntimeError(f"could not build the {peer.name} venv (see {log})")


def installed_versions(python: Path, names: tuple[str, ...]) -> dict[str, str]:
    """Versions of ``names`` inside the venv of ``python`` (for the results file)."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    import json

    result = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True, timeout=60)
    try:
        return dict(json.loads(result.stdout))
    except ValueError:
        return {}


if __name__ == "__main__":
    for peer in PEERS:
        print(peer.name, build(peer), flush=True)
