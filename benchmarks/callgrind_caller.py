"""Instructions per call on the caller's thread, and on all threads, inside real LiteLLM, counted by callgrind.

``run.py`` reads the caller's added latency in microseconds; on a shared 2-core machine a bare mock call moves by
hundreds of microseconds between rounds, more than the differences the caller-thread targets ask about. This counts
instructions instead, per thread (``valgrind --tool=callgrind --separate-threads=yes``), for each configuration in
its own process (the peers run from their own venvs, ``peers.py``):

- the calls: counters zeroed after a warm-up, the calls made, then dumped (with separate threads a client request's
  dump holds only the thread that makes it: here the main thread, the caller);
- the settle: the flush after the calls (exports still queued run on the flushing thread), dumped again;
- at exit every thread's remaining counts (the materialising thread, the batch workers, LiteLLM's logging threads).

Each configuration runs twice, with 20 calls and with ``20 + --calls``; per call is the difference over ``--calls``,
so start-up and warm-up cancel out. Caller = the main thread's calls dumps; all threads = everything counted in a run.
Counts of the other threads grow with wall time (their timed loops wake more often when a call takes ~100 ms under
valgrind), so the all-thread column compares only configurations that ran at the same time under the same load,
and loosely even then; the caller's column is the measure.

The floor is one SDK span with the floor's 12 attributes on a ``SimpleSpanProcessor(InMemorySpanExporter)``, the
``floor`` setup of ``worker.py``. Reported per call: the caller's instructions and what they add to bare LiteLLM,
and the instructions of all threads, calls and settle together, added to bare LiteLLM.

    .venv/bin/python benchmarks/callgrind_caller.py [--calls 100] [--configs bare,in,out,openllmetry]
        [--workloads mock_sync,mock_async,http_sync,http_async,http_stream]

``in`` / ``out``: ours sampled in / sampled out (content off). HTTP workloads call the loopback OpenAI server
(``run.py``'s), which runs in this process, outside valgrind. Needs ``valgrind`` and a C compiler; each
configuration and workload takes two to fifteen minutes (two runs), two at a time.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import callgrind_tools

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
OURS = str(ROOT / ".venv" / "bin" / "python")
_BASE_CALLS = 20
# name -> (peer venv, "" for ours; worker.py setup)
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "bare": ("", {"setup": "bare"}),
    "in": ("", {"setup": "ours", "options": {}}),
    "out": ("", {"setup": "ours", "options": {"sampling_rate": 0.0}}),
    "openllmetry": ("openllmetry", {"setup": "openllmetry"}),
    "openinference": ("openinference", {"setup": "openinference"}),
}
WORKLOADS = ("mock_sync", "mock_async", "http_sync", "http_async", "http_stream")
_ASYNC = ("mock_async", "http_async", "http_astream")
Job = tuple[str, str, str]  # configuration, workload, python


def _child(
    spec: dict[str, Any], workload: str, calls: int, warmup: int, shim: str, report: str, api_base: str | None
) -> None:
    sys.path.insert(0, str(BENCH_DIR))
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import worker

    counters = ctypes.CDLL(shim)
    runner = worker.Worker(worker.make_setup(spec))
    runner.block({"workload": workload, "n": warmup, "api_base": api_base})
    messages = [{"role": "user", "content": worker.prompt_of(100)}]
    time.sleep(0.5)  # the warm-up's exports and LiteLLM's logging of it finish outside the caller's counts
    exported = runner.setup.exported()
    if workload in _ASYNC:  # the caller is the event loop, on the main thread
        call = worker._async_call(workload, messages, api_base)

        async def calls_in_a_row() -> None:
            counters.cg_zero()
            for _ in range(calls):
                await call()
            counters.cg_dump(b"calls")

        runner.loop.run_until_complete(calls_in_a_row())
    else:
        sync_call = worker._sync_call(runner.setup, workload, messages, api_base)
        counters.cg_zero()
        for _ in range(calls):
            sync_call()
        counters.cg_dump(b"calls")
    runner._settle()
    counters.cg_dump(b"settle")
    Path(report).write_text(json.dumps({"spans": runner.setup.exported() - exported}))
    os._exit(0)


def _run(job: Job, calls: int, warmup: int, directory: str, shim: str, api_base: str) -> dict[str, int]:
    """One valgrind run: the caller's instructions over the calls, every thread's over the run, spans exported."""
    name, workload, python = job
    spec = {"setup": "floor"} if workload == "floor" else CONFIGS[name][1]
    stem = f"{directory}/{name}-{workload}-{calls}"
    report = f"{stem}.json"
    child = [spec, workload, calls, warmup, shim, report, api_base if workload.startswith("http") else None]
    command = [
        "valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={stem}.%p",
        python, __file__, "--child", json.dumps(child),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")} if python == OURS else dict(os.environ)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    caller = everything = 0
    for path in glob.glob(f"{stem}.*-*"):
        dump = callgrind_tools.read_dump(path)
        if dump is None:
            continue
        everything += dump.instructions
        if dump.label == "calls" and dump.thread == 1:
            caller += dump.instructions
    return {"caller": caller, "all": everything, "spans": json.loads(Path(report).read_text())["spans"]}


def _measure(job: Job, calls: int, warmup: int, directory: str, shim: str, api_base: str) -> dict[str, float]:
    short = _run(job, _BASE_CALLS, warmup, directory, shim, api_base)
    long = _run(job, _BASE_CALLS + calls, warmup, directory, shim, api_base)
    return {
        "caller": (long["caller"] - short["caller"]) / calls,
        "all": (long["all"] - short["all"]) / calls,
        "spans_per_call": long["spans"] / (_BASE_CALLS + calls),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--configs", default="bare,in,out,openllmetry")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*json.loads(args.child))
        return
    sys.path.insert(0, str(BENCH_DIR))
    import peers
    from run import BenchOpenAIServer

    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]

    def python_of(name: str) -> str:
        peer = next((p for p in peers.PEERS if p.name == CONFIGS[name][0]), None)
        return str(peers.build(peer)) if peer else OURS  # build() reuses a ready venv

    jobs: list[Job] = [("floor", "floor", OURS)]
    jobs += [(name, workload, python_of(name)) for workload in workloads for name in names]
    server = BenchOpenAIServer(default_chunks=50).start()
    try:
        with tempfile.TemporaryDirectory(prefix="leanllm-callgrind-caller-") as directory:
            shim = callgrind_tools.build(directory)

            def one(job: Job) -> dict[str, float]:
                return _measure(job, args.calls, args.warmup, directory, shim, server.base_url)

            with ThreadPoolExecutor(args.parallel) as pool:
                results = dict(zip(jobs, pool.map(one, jobs), strict=True))
    finally:
        server.stop()
    floor = results[jobs[0]]["caller"]
    print(f"instructions per call: {args.calls} calls after {args.warmup} warm-up calls, 100 B prompt")
    print(f"floor (one SDK span, SimpleSpanProcessor(InMemorySpanExporter)): {floor:,.0f} on the caller")
    print(f"{'workload':<12} {'configuration':<14} {'caller':>12} {'caller added':>13} {'x floor':>8} "
          f"{'all threads':>12} {'all added':>12} spans/call")  # fmt: skip
    for workload in workloads:
        bare = results.get(("bare", workload, OURS))
        for name in names:
            value = results[(name, workload, python_of(name))]
            added = value["caller"] - bare["caller"] if bare and name != "bare" else None
            added_all = value["all"] - bare["all"] if bare and name != "bare" else None
            print(
                f"{workload:<12} {name:<14} {value['caller']:>12,.0f} "
                f"{'' if added is None else f'{added:,.0f}':>13} {'' if added is None else f'{added / floor:.2f}':>8} "
                f"{value['all']:>12,.0f} {'' if added_all is None else f'{added_all:,.0f}':>12} "
                f"{value['spans_per_call']:.2f}"
            )
    print(json.dumps({f"{name}/{workload}": value for (name, workload, _), value in results.items()}))


if __name__ == "__main__":
    main()
