"""CPU per call of each step of a sampled-in (or sampled-out) call, without LiteLLM: caller, materialise, export.

The wrapper of ``hotpath.py`` runs ``--n`` calls with the materialising thread held back (its wake-ups pushed out);
this thread drains the queue every 64 calls (the thread's own batch) instead, so the three steps can be timed one
after the other with ``thread_time`` on this thread, and the export threads' CPU read from their clocks:

- caller: the ``--n`` wrapped calls (what the application's thread pays);
- materialise: ``drain()`` of the deferred queue (span build, response attributes, metrics, our processor);
- export: ``force_flush`` (rendering, mapping, the SQLite write), all threads but this one.

    .venv/bin/python benchmarks/steps.py [--n 5000] [--repeats 5] [--rate 1.0] [--pii] [--vary]
        [--profile caller|materialise]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import hotpath


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--capture", action="store_true")
    parser.add_argument("--pii", action="store_true", help="run.py's 100 B prompt (an email, a phone, a key)")
    parser.add_argument("--vary", action="store_true", help="a prompt of its own per call (no scan-memory hits)")
    parser.add_argument("--profile", choices=("caller", "materialise"), default=None)
    parser.add_argument("--no-gc", action="store_true", help="gc.disable() while timing (what the collector adds)")
    args = parser.parse_args()
    if args.no_gc:
        import gc

        gc.disable()
    from leanllm_otel.instrumentation import deferred

    deferred._WAKE_AT = 10**9
    deferred._WAKE_S = 3600.0
    deferred._MAX_PENDING = 10**9
    prompt = None
    if args.pii:
        from worker import prompt_of

        prompt = prompt_of(100)
    call, pipeline = hotpath.build(args.rate, args.capture, prompt, vary=args.vary)
    call()
    pipeline.force_flush(30_000)
    queues = list(deferred._INSTANCES)
    rows: dict[str, list[float]] = {"caller": [], "materialise": [], "export (other threads)": []}
    for repeat in range(args.repeats):
        profile = cProfile.Profile() if args.profile and repeat == args.repeats - 1 else None
        caller = materialise = 0.0
        process0, thread0 = time.process_time(), time.thread_time()
        for start in range(0, args.n, 64):
            t0 = time.thread_time()
            if profile is not None and args.profile == "caller":
                profile.enable()
            for _ in range(min(64, args.n - start)):
                call()
            if profile is not None and args.profile == "caller":
                profile.disable()
            t1 = time.thread_time()
            if profile is not None and args.profile == "materialise":
                profile.enable()
            for queue in queues:
                queue.drain()
            if profile is not None and args.profile == "materialise":
                profile.disable()
            t2 = time.thread_time()
            caller += t1 - t0
            materialise += t2 - t1
        flushing = time.thread_time()
        pipeline.force_flush(60_000)
        time.sleep(0.05)
        # Every other thread, those that ended included (an export batch may run on a thread of its own).
        others = (time.process_time() - process0) - (time.thread_time() - thread0) + (time.thread_time() - flushing)
        rows["caller"].append(caller / args.n * 1e6)
        rows["materialise"].append(materialise / args.n * 1e6)
        rows["export (other threads)"].append(others / args.n * 1e6)
        if profile is not None:
            pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(35)
    out = {name: round(statistics.median(values), 2) for name, values in rows.items()}
    out["total"] = round(sum(out.values()), 2)
    print(
        json.dumps(
            {
                "rate": args.rate,
                "capture": args.capture,
                "pii": args.pii,
                "vary": args.vary,
                "n": args.n,
                "us_per_call": out,
            }
        )
    )
    pipeline.shutdown()
    os._exit(0)


if __name__ == "__main__":
    main()
