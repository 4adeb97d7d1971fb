"""Instructions per call of each step of a sampled-in call, counted by callgrind: exact and load-independent.

``steps.py`` times the same steps with ``thread_time``, which on a shared 2-core machine moves by +-20 us between
identical runs. This runs them one after the other on one thread (the batch processor's queue is held, so nothing
exports behind the measurement) under ``valgrind --tool=callgrind`` and dumps the counters between steps through a
two-function shim (``CALLGRIND_ZERO_STATS`` / ``CALLGRIND_DUMP_STATS_AT``, compiled here with ``cc`` against
``valgrind/callgrind.h``):

- caller: the wrapped calls (``hotpath.build``: our wrapper around a function that returns a ready response);
- materialise: the deferred queue drained (span, response attributes, metrics, our processor);
- render: the content renderer on each kept span (message parts, security scan, findings);
- map: the span -> row mapping alone (also inside the next step; shown for its share);
- sql export: the SQL exporter's ``export`` of the rendered batch (mapping, parameters, the SQLite write).

Each step is counted for ``--calls`` calls and for 50 calls after warm-ups of 511 and 50 calls (every statement
length of the SQLite store seen); the difference divided by ``--calls`` is what one call adds (start-up cancels out).

    .venv/bin/python benchmarks/callgrind_steps.py [--calls 400] [--vary]

Needs ``valgrind`` and a C compiler; takes about five minutes.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import callgrind_tools

STEPS = ("caller", "materialise", "render", "map", "sqlexport")


def _child(calls: int, vary: bool, shim: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    counters = ctypes.CDLL(shim)
    import gc

    import hotpath
    from worker import prompt_of

    from leanllm_otel.event import span_row_values
    from leanllm_otel.exporters import batching
    from leanllm_otel.instrumentation import deferred
    from leanllm_otel.processing import rendering

    deferred._WAKE_AT = 10**9
    deferred._WAKE_S = 3600.0
    deferred._MAX_PENDING = 10**9
    held: list[Any] = []
    batching.LeanLLMBatchSpanProcessor.on_end = lambda self, span: held.append(span)  # type: ignore[method-assign]
    call, pipeline = hotpath.build(1.0, False, prompt_of(100), vary=vary)
    chain = next(o for o in gc.get_objects() if isinstance(o, rendering.ContentRenderingExporter))

    def run(label: str, n: int) -> None:
        del held[:]
        counters.cg_zero()
        for _ in range(n):
            call()
        counters.cg_dump(f"{label}caller".encode())
        for queue in list(deferred._INSTANCES):
            queue.drain()
        counters.cg_dump(f"{label}materialise".encode())
        rendered = [chain.renderer.render(span) for span in held]
        counters.cg_dump(f"{label}render".encode())
        for span in rendered:
            span_row_values(span)
        counters.cg_dump(f"{label}map".encode())
        chain.inner.export(rendered)
        counters.cg_dump(f"{label}sqlexport".encode())

    run("warm-", 511)
    run("warm2-", 50)
    run("a-", 50)
    run("b-", 50 + calls)
    pipeline.shutdown()
    os._exit(0)


def _counts(directory: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in glob.glob(f"{directory}/out.*.*"):
        dump = callgrind_tools.read_dump(path)
        if dump is not None and dump.label is not None:
            counts[dump.label] = dump.instructions
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--vary", action="store_true", help="a prompt of its own per call (no scan-memory hits)")
    parser.add_argument("--child", metavar="SHIM", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.calls, args.vary, args.child)
        return
    with tempfile.TemporaryDirectory(prefix="leanllm-callgrind-") as directory:
        shim = callgrind_tools.build(directory)
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={directory}/out.%p",
            sys.executable, __file__, "--calls", str(args.calls), "--child", shim,
        ]  # fmt: skip
        if args.vary:
            command.append("--vary")
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        counts = _counts(directory)
    per_call = {step: (counts[f"b-{step}"] - counts[f"a-{step}"]) / args.calls for step in STEPS}
    for step in STEPS:
        print(f"{step:12s} {per_call[step]:>10,.0f} instructions per call")
    total = sum(value for step, value in per_call.items() if step != "map")
    print(f"{'total':12s} {total:>10,.0f} (map is inside sqlexport)")


if __name__ == "__main__":
    main()
