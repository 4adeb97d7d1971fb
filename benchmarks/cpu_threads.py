"""Where the added CPU per call goes, thread by thread, for one configuration of ``worker.py`` inside real LiteLLM.

Runs ``--calls`` mock (or loopback HTTP) calls in this process after a warm-up, flushes the pipeline, and reports the
CPU each thread spent per call (``pthread_getcpuclockid``: no profiler in the way), grouped by thread name
(``MainThread`` is the caller; ``leanllm-materialise``, the batch workers, LiteLLM's ``ThreadPoolExecutor-*``
logging threads). With ``--yappi`` it also profiles every thread (CPU clock) and prints the top functions of each.
Run it once per configuration and subtract ``bare``:

    .venv/bin/python benchmarks/cpu_threads.py '{"setup": "bare"}' --calls 3000
    .venv/bin/python benchmarks/cpu_threads.py '{"setup": "ours", "options": {}}' --calls 3000
    .venv/bin/python benchmarks/cpu_threads.py '{"setup": "ours", "options": {"sampling_rate": 0.0}}' --yappi
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("LITELLM_LOG", "ERROR")

import worker


def _group(name: str) -> str:
    return re.sub(r"[-_]\d+(_\d+)?$", "", name)


def _thread_cpu() -> dict[int, tuple[str, float]]:
    out: dict[int, tuple[str, float]] = {}
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            clock = time.pthread_getcpuclockid(thread.ident)
            out[thread.ident] = (thread.name, time.clock_gettime(clock))
        except (OSError, ValueError):
            continue
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--workload", default="mock_sync")
    parser.add_argument("--yappi", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    setup = worker.make_setup(json.loads(args.spec))
    runner = worker.Worker(setup)
    command: dict[str, Any] = {"workload": args.workload, "n": args.warmup}
    runner.block(command)
    # Threads that die during the run lose their clock; keep the last reading of every thread seen.
    before = _thread_cpu()
    last = dict(before)
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.01):
            last.update(_thread_cpu())

    sampler = threading.Thread(target=sample, name="cpu-sampler", daemon=True)
    sampler.start()
    if args.yappi:
        import yappi

        yappi.set_clock_type("cpu")
        yappi.start(builtins=False, profile_threads=True)
    cpu0 = time.process_time()
    result = runner.block({**command, "n": args.calls})
    cpu = time.process_time() - cpu0
    if args.yappi:
        yappi.stop()
    stop.set()
    sampler.join()
    last.update(_thread_cpu())
    per_group: dict[str, float] = defaultdict(float)
    for ident, (name, value) in last.items():
        if name == "cpu-sampler":
            continue
        start = before.get(ident, (name, 0.0))[1]
        per_group[_group(name)] += value - start
    n = args.calls
    report = {
        "spec": json.loads(args.spec),
        "calls": n,
        "process_cpu_us_per_call": round(cpu / n * 1e6, 1),
        "threads_us_per_call": {k: round(v / n * 1e6, 1) for k, v in sorted(per_group.items(), key=lambda i: -i[1])},
        "caller_p50_us": sorted(result["times_ns"])[n // 2] / 1e3,
        "spans": result["spans"],
    }
    worker._PROTOCOL.write(json.dumps(report, indent=1) + "\n")
    if args.yappi:
        import yappi

        names = {t.id: t.name for t in yappi.get_thread_stats()}
        for thread in yappi.get_thread_stats():
            if thread.ttot / n * 1e6 < 2:
                continue
            worker._PROTOCOL.write(f"\n== thread {thread.name} ({thread.ttot / n * 1e6:.1f} us/call under yappi)\n")
            stats = yappi.get_func_stats(filter={"ctx_id": thread.id})
            stats.sort("tsub")
            for row in list(stats)[: args.top]:
                worker._PROTOCOL.write(
                    f"  tsub {row.tsub / n * 1e6:7.2f} ttot {row.ttot / n * 1e6:7.2f} us/call  "
                    f"{row.ncall / n:6.2f}x  {row.module.split('site-packages/')[-1]}:{row.lineno} {row.name}\n"
                )
        del names
    worker._PROTOCOL.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
