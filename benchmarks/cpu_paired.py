"""Added CPU per call, thread by thread, ours vs bare LiteLLM, paired inside one process (low noise).

One ``configure()`` pipeline (SQLite, content off); blocks of ``--block`` mock calls rotate, round after round,
between three modes: ``bare`` (the wrapper passes through: ``suppress_instrumentation``), ``in`` (sampling 1.0) and
``out`` (sampling 0.0, swapped into the live telemetry settings). After each block the pipeline is flushed (its
export work is counted, as in ``run.py``); each thread's CPU (``pthread_getcpuclockid``) is read before and after.
Prints the median over rounds of each thread group's CPU per call and of the caller's p50, and ours minus bare.

    .venv/bin/python benchmarks/cpu_paired.py [--rounds 15] [--block 200] [--workload mock_sync]
"""

from __future__ import annotations

import argparse
import contextvars
import dataclasses
import gc
import json
import os
import resource
import statistics
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
from cpu_threads import _group, _thread_cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--block", type=int, default=200)
    parser.add_argument("--workload", default="mock_sync")
    parser.add_argument("--modes", default="bare,in,out")
    parser.add_argument("--options", default="{}", help="configure() options (JSON), e.g. '{\"batch_size\": 20}'")
    parser.add_argument("--yappi", action="store_true", help="profile one block per mode instead (yappi, CPU clock)")
    args = parser.parse_args()
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    setup = worker.OursSetup(json.loads(args.options))
    telemetry = setup.pipeline.instrumentor.telemetry
    settings_in = telemetry.settings
    settings_out = dataclasses.replace(settings_in, sampling_rate=0.0)
    runner = worker.Worker(setup)
    modes = args.modes.split(",")
    per_mode: dict[str, dict[str, list[float]]] = {m: defaultdict(list) for m in modes}
    p50s: dict[str, list[float]] = {m: [] for m in modes}

    deferral, record_metrics = telemetry.deferral, telemetry.record_metrics

    def block(mode: str, n: int) -> dict[str, Any]:
        # Variants for experiments: out_caller (light metrics on the caller), out_nometrics (no metric points).
        telemetry.settings = settings_out if mode.startswith("out") else settings_in
        telemetry.deferral = (lambda: None) if mode in ("out_caller", "out_nometrics") else deferral
        telemetry.record_metrics = (lambda *a: None) if mode == "out_nometrics" else record_metrics
        command = {"workload": args.workload, "n": n}
        if mode in ("out_noattach", "out_nosubmit", "out_noinit"):
            return _variant(mode, runner, command)
        if mode == "passthrough":  # our wrapper installed, returning at its first check (the nesting guard)
            from leanllm_otel.instrumentation import wrappers

            guard = wrappers._IN_LLM_CALL.set(True)
            try:
                return runner.block(command)
            finally:
                wrappers._IN_LLM_CALL.reset(guard)
        if mode in ("bare_busy", "bare_ctxvar"):  # bare plus ~13 us of unrelated work per call, or a context variable
            original = worker._sync_call

            def busy_call(*a: Any) -> Any:
                call = original(*a)

                def run() -> None:
                    if mode == "bare_ctxvar":  # a context variable set and reset around the call, nothing else
                        token = _DUMMY.set(True)
                        try:
                            call()
                        finally:
                            _DUMMY.reset(token)
                        return
                    _busy()
                    call()

                return run

            worker._sync_call = busy_call  # type: ignore[assignment]
            try:
                with suppress_instrumentation():
                    return runner.block(command)
            finally:
                worker._sync_call = original  # type: ignore[assignment]
        if mode in ("bare", "bare_again"):  # bare_again: an A/A check of the harness's noise
            with suppress_instrumentation():
                return runner.block(command)
        if mode == "bare_span":  # bare, with a valid non-recording span current (what our wrapper makes current)
            from opentelemetry import context as context_api
            from opentelemetry.trace import NonRecordingSpan, SpanContext, set_span_in_context

            span = NonRecordingSpan(SpanContext(1 << 64, 1 << 32, False))
            token = context_api.attach(set_span_in_context(span))
            try:
                with suppress_instrumentation():
                    return runner.block(command)
            finally:
                context_api.detach(token)
        return runner.block(command)

    gc_time = [0.0]
    gc_start = [0.0]

    def _gc_callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_start[0] = time.thread_time()
        else:
            gc_time[0] += time.thread_time() - gc_start[0]

    gc.callbacks.append(_gc_callback)
    for mode in modes:
        block(mode, 200)
    if args.yappi:
        _profile(block, modes, args.block * args.rounds)
        return
    for r in range(args.rounds):
        order = modes[r % len(modes):] + modes[: r % len(modes)]
        for mode in order:
            before = _thread_cpu()
            usage0 = resource.getrusage(resource.RUSAGE_THREAD)
            cpu0 = time.process_time()
            gc0 = gc_time[0]
            counts0 = [st["collections"] for st in gc.get_stats()]
            result = block(mode, args.block)
            groups_gc = gc_time[0] - gc0
            counts = [st["collections"] - c for st, c in zip(gc.get_stats(), counts0, strict=True)]
            total = time.process_time() - cpu0
            after = _thread_cpu()
            usage = resource.getrusage(resource.RUSAGE_THREAD)
            groups: dict[str, float] = defaultdict(float)
            for ident, (name, value) in after.items():
                groups[_group(name)] += value - before.get(ident, (name, 0.0))[1]
            groups["(short-lived threads: process - the rest)"] = total - sum(groups.values())
            groups["(process)"] = total
            # The caller's context switches (x1e6 per call): voluntary ones are waits (the GIL, a lock, I/O).
            groups["(caller voluntary switches x1e6)"] = usage.ru_nvcsw - usage0.ru_nvcsw
            groups["(caller involuntary switches x1e6)"] = usage.ru_nivcsw - usage0.ru_nivcsw
            groups["(gc, all threads)"] = groups_gc
            for generation, count in enumerate(counts):
                groups[f"(gc gen{generation} collections x1e6)"] = count
            for name, value in groups.items():
                per_mode[mode][name].append(value / args.block * 1e6)
            p50s[mode].append(statistics.median(result["times_ns"]) / 1e3)
    names = sorted({n for m in modes for n in per_mode[m]}, key=lambda n: (n != "(process)", n))
    out: dict[str, Any] = {"workload": args.workload, "rounds": args.rounds, "block": args.block}
    for mode in modes:
        # Medians hide the rare full collections: the collector's rows are means over the rounds.
        row = {}
        for n in names:
            summary = statistics.fmean if n.startswith(("(gc", "(caller")) else statistics.median
            row[n] = round(summary(per_mode[mode][n] or [0.0]), 1)
        row["caller p50"] = round(statistics.median(p50s[mode]), 1)
        out[mode] = row
    if "bare" in modes:
        for mode in modes:
            if mode == "bare":
                continue
            out[f"{mode} - bare"] = {
                n: round(out[mode][n] - out["bare"].get(n, 0.0), 1) for n in [*names, "caller p50"]
            }
    worker._PROTOCOL.write(json.dumps(out, indent=1) + "\n")
    worker._PROTOCOL.flush()
    os._exit(0)


_DUMMY: contextvars.ContextVar[bool] = contextvars.ContextVar("cpu_paired_dummy", default=False)


def _busy() -> None:
    items = {}
    for i in range(60):
        items[f"k{i}"] = (i, str(i))
    sorted(items)


def _variant(mode: str, runner: Any, command: dict[str, Any]) -> dict[str, Any]:
    """Sampled-out with one piece of the light path taken out (bisecting what LiteLLM reacts to)."""
    from leanllm_otel.instrumentation import invocation, wrappers

    saved = (wrappers._InsideCall.__enter__, wrappers._InsideCall.__exit__, invocation.Invocation._end_light)
    if mode == "out_noattach":

        def enter(self: Any) -> None:
            self._guard = wrappers._IN_LLM_CALL.set(True)

        def leave(self: Any, *exc: Any) -> None:
            wrappers._IN_LLM_CALL.reset(self._guard)

        wrappers._InsideCall.__enter__, wrappers._InsideCall.__exit__ = enter, leave  # type: ignore[method-assign]
    elif mode == "out_noinit":  # the Invocation is made, then the wrapper passes through
        original_begin = wrappers._begin

        def begin(*a: Any) -> None:
            original_begin(*a)

        saved_begin = original_begin
        wrappers._begin = begin  # type: ignore[assignment]
        try:
            return dict(runner.block(command))
        finally:
            wrappers._begin = saved_begin
    elif mode == "out_nosubmit":
        invocation.Invocation._end_light = lambda self, *a: None  # type: ignore[method-assign]
    try:
        return dict(runner.block(command))
    finally:
        wrappers._InsideCall.__enter__, wrappers._InsideCall.__exit__, invocation.Invocation._end_light = saved


def _profile(block: Any, modes: list[str], n: int) -> None:
    import yappi

    yappi.set_clock_type("cpu")
    for mode in modes:
        yappi.clear_stats()
        yappi.start(builtins=bool(os.environ.get("YAPPI_BUILTINS")), profile_threads=True)
        block(mode, n)
        yappi.stop()
        for thread in yappi.get_thread_stats():
            if thread.ttot / n * 1e6 < 2:
                continue
            worker._PROTOCOL.write(f"\n== {mode} thread {thread.name} {thread.ttot / n * 1e6:.1f} us/call (yappi)\n")
            stats = yappi.get_func_stats(filter={"ctx_id": thread.id})
            stats.sort("tsub")
            for row in stats:
                worker._PROTOCOL.write(
                    f"  tsub {row.tsub / n * 1e6:8.2f} ttot {row.ttot / n * 1e6:8.2f} {row.ncall / n:7.2f}x  "
                    f"{row.module.split('site-packages/')[-1]}:{row.lineno} {row.name}\n"
                )
    worker._PROTOCOL.flush()
    os._exit(0)


if __name__ == "__main__":
    threading.current_thread().name = "MainThread"
    main()
