"""The version matrix: one virtualenv per cell, created by nox (``nox`` and ``uv`` come with the ``test`` extra).

    nox -l                                       # the cells
    nox -s "compat(litellm-newest)"              # one cell: install it, print its versions, run its tests
    nox -s "compat(litellm-newest)" -- tests/test_errors.py -x   # one cell, the tests you name
    nox -t ci                                    # what .ci/run runs: every cell but the pinned one

The pinned cell is ``constraints.txt``: ``.ci/run`` runs the whole suite on it in ``.venv`` (the README's test
command), so the matrix does not run it again (``compat(pinned)`` reproduces it in a nox venv). Every other cell
moves one side (LiteLLM or OpenTelemetry) and runs ``TESTS``, the tests that touch LiteLLM's or OpenTelemetry's
internals. The versions a cell resolved are printed before its tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nox
import tomllib  # Python 3.11+: nox runs from .venv, which .ci/run makes with python3.11

# uv (in the `test` extra) makes a cell's venv and installs it in seconds rather than minutes; plain venv + pip
# where uv is missing. Both resolve the same versions against this registry.
nox.options.default_venv_backend = "uv|venv"
nox.options.error_on_external_run = True

ROOT = Path(__file__).resolve().parent
# LiteLLM 1.82.7 and 1.82.8 are malicious releases: every LiteLLM requirement here excludes them.
LITELLM_ANY = "litellm>=1.80.0,!=1.82.7,!=1.82.8,<2"
LITELLM_PROXY_ANY = "litellm[proxy]>=1.80.0,!=1.82.7,!=1.82.8,<2"


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


PINS = {
    _name(line): line
    for line in (raw.split("#", 1)[0].strip() for raw in (ROOT / "constraints.txt").read_text().splitlines())
    if line
}
# The `test` extra without its LiteLLM requirement: each cell says which LiteLLM it wants.
TEST_TOOLS = [
    r
    for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    if _name(r) != "litellm"
]
OTEL_FLOOR = {  # the floors pyproject.toml claims (1.40: the SDK configurator's span_processors hook)
    "opentelemetry-api": "opentelemetry-api==1.40.0",
    "opentelemetry-sdk": "opentelemetry-sdk==1.40.0",
    "opentelemetry-exporter-otlp": "opentelemetry-exporter-otlp==1.40.0",
    "opentelemetry-instrumentation": "opentelemetry-instrumentation==0.61b0",
    "opentelemetry-instrumentation-httpx": "opentelemetry-instrumentation-httpx==0.61b0",
}

# What every non-pinned cell runs: the instrumentation (patch points, call paths, exception classes, stream
# wrappers, response shapes), the proxy callback, the zero-code configurator and the SDK batch processor internals.
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
    "tests/test_cost.py",  # cost from LiteLLM's hidden params (read from the pydantic private dict)
    "tests/test_access.py",  # field reads of LiteLLM's pydantic response types
    "tests/test_client.py",
    "tests/test_pipeline.py",
    "tests/test_deferred_spans.py",  # the deferred path reads the SDK tracer's processors, sampler and id generator
    "tests/test_direct_spans.py",  # the direct span path builds the ReadableSpan the SDK would (limits, cleaner, scope)
    "tests/test_entry_exporter.py",  # the entry-point exporter inside the SDK's own BatchSpanProcessor
    "tests/test_multi_client.py",  # per-client routing, also under opentelemetry-instrument
    "tests/reliability/test_overflow.py",
    "tests/reliability/test_shutdown.py",
    "tests/reliability/test_hostile_content.py::test_span_to_event_takes_any_attributes",
    # a 1,000-call load test of the client facade (2 min): the pinned cell runs it
    "--deselect=tests/test_client.py::test_five_hundred_tasks_keep_contexts_chains_and_ring_buffer",
]


def _pinned_except(*names: str) -> tuple[str, ...]:
    """The pins but ``names``; the LiteLLM pin with its proxy extra (the proxy tests need the proxy server)."""
    return tuple(v.replace("litellm==", "litellm[proxy]==") for k, v in PINS.items() if k not in names)


@dataclass(frozen=True)
class Cell:
    """What a cell installs besides the package and the test tools, and which tests it runs (None: all)."""

    requirements: tuple[str, ...]
    tests: list[str] | None = field(default_factory=lambda: list(TESTS))
    ci: bool = True
    without: tuple[str, ...] = ()  # test tools this cell leaves to LiteLLM's own pins


CELLS: dict[str, Cell] = {
    # The oldest LiteLLM the `instruments` extra allows; OpenTelemetry as pinned.
    # LiteLLM 1.80's proxy extra pins uvicorn<0.30, below the `serve` extra's floor: the cell takes LiteLLM's
    # uvicorn (none of its tests runs the ingest service).
    "litellm-oldest": Cell(("litellm[proxy]==1.80.0", *_pinned_except("litellm")), without=("uvicorn",)),
    # constraints.txt, as .ci/run's .venv has it: the whole suite.
    "pinned": Cell(tuple(PINS.values()), tests=None, ci=False),
    # What `pip install 'leanllm-otel[instruments]'` gives a new user today: the newest LiteLLM and OpenTelemetry,
    # no pins. The registry has no `litellm-proxy` package, which LiteLLM's proxy extra needs from 1.108.8 on,
    # so this cell has no proxy server to test against: litellm-newest-proxy covers the proxy.
    "litellm-newest": Cell((LITELLM_ANY,), tests=[t for t in TESTS if t != "tests/test_litellm_proxy.py"]),
    # The newest LiteLLM whose proxy extra the registry can install (the resolver picks it), unpinned otherwise.
    "litellm-newest-proxy": Cell((LITELLM_PROXY_ANY,)),
    # The oldest OpenTelemetry API/SDK (and matching instrumentation) the package claims; LiteLLM as pinned.
    "otel-oldest": Cell((*OTEL_FLOOR.values(), *_pinned_except(*OTEL_FLOOR))),
}

_VERSIONS = (
    "import importlib.metadata as m\n"
    "names = ('litellm', 'openai', 'httpx', 'pydantic', 'opentelemetry-api', 'opentelemetry-sdk',\n"
    "         'opentelemetry-exporter-otlp-proto-http', 'opentelemetry-instrumentation')\n"
    "print('cell versions: ' + ', '.join(f'{n}=={m.version(n)}' for n in names))\n"
)


@nox.session
@nox.parametrize("cell", [nox.param(name, id=name, tags=["ci"] if c.ci else []) for name, c in CELLS.items()])
def compat(session: nox.Session, cell: str) -> None:
    """One cell of the version matrix: install the package with the cell's versions, then run its tests."""
    spec = CELLS[cell]
    if cell == "pinned":
        session.install("-q", "-e", ".[test]", "-c", "constraints.txt")
    else:
        tools = [t for t in TEST_TOOLS if _name(t) not in spec.without]
        session.install("-q", "-e", ".", *tools, *spec.requirements)
    session.run("python", "-c", _VERSIONS, silent=False)
    session.env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no internet: the cost map bundled with LiteLLM
    tests = session.posargs or (spec.tests or [])
    # Newer pydantic warns about LiteLLM's ReadOnly TypedDict items at import: noise, not a finding.
    quiet = ("-W", "ignore:Item.*ReadOnly:UserWarning")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *quiet, *tests)
