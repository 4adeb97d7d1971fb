"""The version matrix: one virtualenv per cell, created by nox.

    nox -l                                  # the cells
    nox -s "compat(litellm-newest)"         # one cell (its tests, see TESTS below)
    nox -s "compat(litellm-newest)" -- tests/test_errors.py -x   # one cell, tests of your choice
    nox -t ci                               # the cells .ci/run runs (every cell but the pinned one)

The pinned cell is ``constraints.txt`` as it stands: ``.ci/run`` runs the full suite on it in ``.venv`` (the README's
test command), so the matrix does not run it again; ``compat(pinned)`` exists to reproduce it in a nox venv. Every
other cell changes one side (LiteLLM or OpenTelemetry) and runs the tests that touch LiteLLM's or OpenTelemetry's
internals. Versions each cell resolved are printed before its tests run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.error_on_external_run = True

ROOT = Path(__file__).resolve().parent
# LiteLLM 1.82.7 and 1.82.8 are malicious releases: every LiteLLM requirement written here excludes them.
NOT_MALICIOUS = "!=1.82.7,!=1.82.8"


def _pins() -> dict[str, str]:
    """``constraints.txt`` as {project name: requirement}."""
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name = re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower()
            pins[name] = line
    return pins


PINS = _pins()
OTEL_FLOOR = {
    "opentelemetry-api": "opentelemetry-api==1.40.0",
    "opentelemetry-sdk": "opentelemetry-sdk==1.40.0",
    "opentelemetry-exporter-otlp": "opentelemetry-exporter-otlp==1.40.0",
    "opentelemetry-instrumentation": "opentelemetry-instrumentation==0.61b0",
    "opentelemetry-instrumentation-httpx": "opentelemetry-instrumentation-httpx==0.61b0",
}

# The tests that exercise LiteLLM's and OpenTelemetry's internals (patch points, exception classes, stream wrapper,
# proxy hooks, response shapes, the SDK's batch processor and configurator): what every non-pinned cell runs.
TESTS = [
    "tests/test_compat.py",
    "tests/test_call_paths.py",
    "tests/test_instrumentor.py",
    "tests/test_errors.py",
    "tests/test_streams.py",
    "tests/test_litellm_proxy.py",
    "tests/test_zero_code.py",
    "tests/test_support_servers.py",
    "tests/test_content_parts.py",
    "tests/test_client.py",
    "tests/test_pipeline.py",
    "tests/reliability/test_overflow.py",
    "tests/reliability/test_shutdown.py",
    "tests/reliability/test_hostile_content.py",
]


@dataclass(frozen=True)
class Cell:
    """What one cell installs on top of ``.[test]``, and which tests it runs (None: the whole suite)."""

    requirements: tuple[str, ...]
    tests: list[str] | None = field(default_factory=lambda: TESTS)
    ci: bool = True


CELLS: dict[str, Cell] = {
    # The oldest LiteLLM the `instruments` extra allows, next to the pinned OpenTelemetry.
    "litellm-oldest": Cell(
        ("litellm[proxy]==1.80.0", *(v for k, v in PINS.items() if k != "litellm")),
    ),
    # constraints.txt as it is (what .ci/run's .venv has): the whole suite.
    "pinned": Cell(tuple(PINS.values()), tests=None, ci=False),
    # Whatever the registry resolves today for a new user: no pins at all.
    "litellm-newest": Cell((f"litellm[proxy]>=1.80.0,{NOT_MALICIOUS},<2",)),
    # The oldest OpenTelemetry API/SDK (and matching instrumentation) the package claims, with the pinned LiteLLM.
    "otel-oldest": Cell(
        (*OTEL_FLOOR.values(), *(v for k, v in PINS.items() if k not in OTEL_FLOOR)),
    ),
}

_VERSIONS = (
    "import importlib.metadata as m\n"
    "names = ('litellm', 'openai', 'httpx', 'pydantic', 'opentelemetry-api', 'opentelemetry-sdk',\n"
    "         'opentelemetry-exporter-otlp-proto-http', 'opentelemetry-instrumentation')\n"
    "print('cell versions: ' + ', '.join(f'{n}=={m.version(n)}' for n in names))\n"
)


@nox.session
@nox.parametrize(
    "cell", [nox.param(name, id=name, tags=["ci"] if cell.ci else []) for name, cell in CELLS.items()]
)
def compat(session: nox.Session, cell: str) -> None:
    """One cell of the version matrix: install ``.[test]`` with the cell's versions, then run its tests."""
    spec = CELLS[cell]
    session.install("--disable-pip-version-check", "-q", "-e", ".[test]", *spec.requirements)
    session.run("python", "-c", _VERSIONS, silent=False)
    session.env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no internet: the cost map bundled with LiteLLM
    tests = session.posargs or (spec.tests or [])
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests)
