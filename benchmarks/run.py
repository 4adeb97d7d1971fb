"""Run every leanllm-otel benchmark in one go and write the results.

    .venv/bin/python benchmarks/run.py            # full run (peers' venvs are built on first use)
    .venv/bin/python benchmarks/run.py --quick    # tiny counts, for a smoke check
    .venv/bin/python benchmarks/run.py --no-peers # skip the peer instrumentations

Writes ``benchmarks/results/<date>.json``, ``<date>.md`` (the table, also printed) and ``<date>.png``.

Method: each configuration lives in its own worker process (``worker.py``), so the global instrumentor of one
never touches another. The orchestrator runs, round after round, one block of calls per configuration for every
case, in a shuffled order, so configurations are interleaved in time on a shared, noisy machine. Added latency is
computed per call against the bare LiteLLM median *of the same round* (paired), then summarised over all rounds;
added CPU is the per-round difference of process CPU per call (all threads, exporter flush included). The loopback
servers run in this process, so their CPU is not charged to any worker.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))  # the loopback servers
sys.path.insert(0, str(BENCH_DIR))
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import peers as peer_venvs  # noqa: E402
import report  # noqa: E402

from loopback import LeanLLMServiceServer, OTLPReceiver, PostgresServer  # noqa: E402
from loopback import openai_server as _openai_server  # noqa: E402


class _NoDelayHandler(_openai_server._Handler):
    # Without TCP_NODELAY the server's split writes meet the client's delayed ACK: ~40 ms per call on loopback.
    disable_nagle_algorithm = True


class BenchOpenAIServer(_openai_server.OpenAIServer):
    handler_class = _NoDelayHandler


class _NoDelayServiceHandler(LeanLLMServiceServer.handler_class):  # type: ignore[name-defined,misc]
    disable_nagle_algorithm = True


class BenchServiceServer(LeanLLMServiceServer):
    handler_class = _NoDelayServiceHandler


WORKER = BENCH_DIR / "worker.py"
THROUGHPUT = BENCH_DIR / "throughput.py"
MAIN_PYTHON = Path(sys.executable)
KB = 1024


@dataclass
class Config:
    name: str
    label: str
    python: Path
    spec: dict[str, Any]
    kind: str  # bare | ours | peer | floor
    note: str = ""


@dataclass
class Case:
    """One thing measured: a workload at a prompt size and concurrency, over a set of configurations."""

    section: str
    workload: str
    configs: list[str]
    n: int
    prompt_bytes: int = 100
    threads: int = 1
    tasks: int = 1
    group: str = "main"  # cases of one group share worker processes; other groups get fresh ones

    @property
    def key(self) -> str:
        parts = [self.section, self.workload, f"{self.prompt_bytes}B"]
        if self.threads > 1:
            parts.append(f"t{self.threads}")
        if self.tasks > 1:
            parts.append(f"k{self.tasks}")
        return "/".join(parts)


@dataclass
class Samples:
    times_ns: list[list[int]] = field(default_factory=list)  # per round
    cpu_per_call_s: list[float] = field(default_factory=list)
    wall_per_call_s: list[float] = field(default_factory=list)
    spans: int = 0
    created: int = 0
    calls: int = 0


class WorkerProcess:
    """A worker subprocess speaking the line-JSON protocol of ``worker.py``."""

    def __init__(self, config: Config, timeout_s: float, log_dir: Path, group: str = "main") -> None:
        self.config = config
        self.log_path = log_dir / f".{config.name}.{group}.stderr.log"
        self.timeout_s = timeout_s
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LEANLLM_", "TRACELOOP_"))}
        env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        env["LITELLM_LOG"] = "ERROR"
        env["PYTHONHASHSEED"] = "0"
        self.stderr = open(self.log_path, "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(config.python), str(WORKER), json.dumps(config.spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=env,
            cwd=str(BENCH_DIR),
        )
        self.selector = selectors.DefaultSelector()
        assert self.process.stdout is not None
        self.selector.register(self.process.stdout, selectors.EVENT_READ)
        hello = self._read()
        if not hello.get("ready"):
            raise RuntimeError(f"{config.name}: worker did not start: {hello}")

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        if not self.selector.select(self.timeout_s):
            raise TimeoutError(f"{self.config.name}: no answer within {self.timeout_s:.0f} s")
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.config.name}: worker exited (see {self.log_path})")
        return dict(json.loads(line))

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise RuntimeError(f"{self.config.name}: {answer['error']}")
        return answer

    def close(self) -> None:
        try:
            if self.process.poll() is None and self.process.stdin is not None:
                self.process.stdin.write('{"op": "exit"}\n')
                self.process.stdin.flush()
                self.process.wait(timeout=30)
        except Exception:
            pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.stderr.close()


# --- configurations and cases ----------------------------------------------------------------------------------
def build_configs(args: argparse.Namespace, log: list[str]) -> dict[str, Config]:
    configs = {
        "bare": Config("bare", "bare LiteLLM", MAIN_PYTHON, {"setup": "bare"}, "bare"),
        "floor": Config(
            "floor", "SDK span floor", MAIN_PYTHON, {"setup": "floor"}, "floor",
            "one SDK span, 12 attributes, SimpleSpanProcessor(InMemorySpanExporter)",
        ),
        "ours_in": Config(
            "ours_in", "leanllm-otel sampled-in", MAIN_PYTHON, {"setup": "ours", "options": {}}, "ours",
            "configure(database_url=sqlite:///tmp) sampling 1.0, content off",
        ),
        "ours_in_sdk": Config(
            "ours_in_sdk", "leanllm-otel sampled-in, SDK span on the caller (before)", MAIN_PYTHON,
            {"setup": "ours", "options": {"deferred": False}}, "ours",
            "as ours_in with deferred span materialisation off (instrumentation/deferred.py ENABLED=False)",
        ),
        "ours_out": Config(
            "ours_out", "leanllm-otel sampled-out", MAIN_PYTHON,
            {"setup": "ours", "options": {"sampling_rate": 0.0}}, "ours", "sampling_rate=0.0, SQLite",
        ),
        "ours_redacted": Config(
            "ours_redacted", "leanllm-otel redacted content", MAIN_PYTHON,
            {"setup": "ours", "options": {"capture_content": True, "redaction_mode": "redacted"}}, "ours",
            "capture_content=True, redaction_mode=redacted, SQLite",
        ),
    }
    if args.no_peers:
        return configs
    for peer in peer_venvs.PEERS:
        try:
            started = time.monotonic()
            python = peer_venvs.build(peer)
            log.append(f"peer venv {peer.name}: ready ({time.monotonic() - started:.0f} s)")
        except Exception as exc:
            log.append(f"peer venv {peer.name}: FAILED ({exc}); skipped")
            continue
        configs[peer.name] = Config(peer.name, peer.label, python, {"setup": peer.setup}, "peer", peer.exporter_note)
    return configs


def build_cases(args: argparse.Namespace, configs: dict[str, Config]) -> list[Case]:
    quick = args.quick
    n = 5 if quick else args.calls
    peers = [name for name, c in configs.items() if c.kind == "peer"]
    main = ["bare", "ours_in", "ours_in_sdk", "ours_out", *peers]
    cases = [
        Case("overhead", "mock_sync", main, n),
        Case("overhead", "mock_async", main, n),
        Case("overhead", "http_sync", main, n),
        Case("overhead", "http_async", main, n),
        Case("overhead", "http_stream", main, max(2, n // 5)),
        Case("floor", "floor", ["floor"], n * 4),
    ]
    for size in (2 * KB, 50 * KB):
        cases.append(Case("content", "http_sync", ["bare", "ours_in", "ours_redacted", *peers], n, prompt_bytes=size))
    sizes = (100, 2 * KB, 50 * KB) if quick else (100, KB, 2 * KB, 10 * KB, 50 * KB, 100 * KB, KB * KB)
    for size in sizes:
        calls = n if size <= 100 * KB else max(2, n // 2)
        configs_here = ["bare", "ours_in", "ours_redacted"]
        cases.append(Case("prompt_size", "mock_sync", configs_here, calls, prompt_bytes=size, group="size"))
    for threads in (1, 8) if quick else (1, 8, 32):
        calls = max(n, threads * (1 if quick else 8))
        cases.append(Case("threads", "mock_sync", ["bare", "ours_in"], calls, threads=threads, group="threads"))
    for tasks in (1, 10) if quick else (1, 100, 1000):
        cases.append(Case("tasks", "mock_async", ["bare", "ours_in"], max(n, tasks), tasks=tasks, group="tasks"))
    return cases


# --- running -----------------------------------------------------------------------------------------------------
def run_overhead(
    args: argparse.Namespace, configs: dict[str, Config], cases: list[Case], api_base: str, log: list[str]
) -> tuple[dict[str, dict[str, Samples]], dict[str, Any]]:
    # One worker process per (configuration, group): the scaling cases (1,000 tasks, 32 threads, 1 MB prompts)
    # leave LiteLLM's logging queues and executors in a state that would bias the per-call comparison.
    needed = sorted({(name, case.group) for case in cases for name in case.configs})
    workers: dict[tuple[str, str], WorkerProcess] = {}
    failed: dict[tuple[str, str], str] = {}
    for name, group in needed:
        try:
            workers[(name, group)] = WorkerProcess(configs[name], args.timeout, args.out, group)
        except Exception as exc:
            failed[(name, group)] = str(exc)
            log.append(f"config {name} ({group}): could not start: {exc}")
    samples: dict[str, dict[str, Samples]] = {case.key: {} for case in cases}
    rng = random.Random(args.seed)

    def block(name: str, case: Case, record: bool) -> None:
        key = (name, case.group)
        if key in failed:
            return
        command = {
            "op": "block",
            "workload": case.workload,
            "n": case.n if record else max(2, min(case.n, 10)),
            "prompt_bytes": case.prompt_bytes,
            "threads": case.threads,
            "tasks": case.tasks,
            "api_base": api_base,
        }
        try:
            answer = workers[key].ask(command)
        except Exception as exc:
            failed[key] = str(exc)
            log.append(f"config {name} ({case.group}): failed in {case.key}: {exc}")
            return
        if not record:
            return
        s = samples[case.key].setdefault(name, Samples())
        s.times_ns.append(answer["times_ns"])
        calls = max(1, int(answer["calls"]))
        s.cpu_per_call_s.append(answer["cpu_s"] / calls)
        s.wall_per_call_s.append(answer["wall_s"] / calls)
        s.spans += int(answer["spans"])
        s.created += int(answer["created"])
        s.calls += calls

    started = time.monotonic()
    for case in cases:  # warm-up: imports, connection pools, caches
        for name in case.configs:
            block(name, case, record=False)
    rounds = 2 if args.quick else args.rounds
    for round_index in range(rounds):
        for case in cases:
            order = list(case.configs)
            rng.shuffle(order)
            for name in order:
                block(name, case, record=True)
        print(f"  round {round_index + 1}/{rounds} done ({time.monotonic() - started:.0f} s)", flush=True)
    info: dict[str, Any] = {}
    for (name, group), worker in workers.items():
        entry = info.setdefault(name, {})
        try:
            if (name, group) not in failed:
                answer = worker.ask({"op": "info"})
                entry["versions"] = answer["versions"]
                entry.setdefault("peak_rss_kb", {})[group] = answer["maxrss_kb"]
        except Exception as exc:
            failed[(name, group)] = str(exc)
        worker.close()
    for (name, group), reason in failed.items():
        info.setdefault(name, {}).setdefault("failed", {})[group] = reason
    return samples, info


def run_throughput(args: argparse.Namespace, log: list[str]) -> list[dict[str, Any]]:
    n = 2_000 if args.quick else args.spans
    small_queue = 256
    results: list[dict[str, Any]] = []
    postgres: PostgresServer | None = None
    targets: dict[str, Any] = {"sqlite": None}
    service = BenchServiceServer(api_key="lllm_bench").start()
    receiver = OTLPReceiver().start()
    targets["service"] = service.endpoint
    targets["otlp"] = receiver.traces_endpoint
    if not args.no_postgres:
        try:
            postgres = PostgresServer()
            postgres.start()
            targets["postgresql"] = "postgres"
        except Exception as exc:
            log.append(f"PostgreSQL unavailable: {exc}")
            postgres = None
    try:
        for sink in ("sqlite", "postgresql", "service", "otlp"):
            if sink not in targets:
                continue
            for mode, queue in (("pipeline", None), ("pipeline", small_queue), ("export", None)):
                target = targets[sink]
                if sink == "postgresql" and postgres is not None:
                    target = postgres.create_database()
                service.clear()
                receiver.clear()
                options = {"sink": sink, "n": n, "queue_max_size": queue, "target": target, "mode": mode}
                env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LEANLLM_"))}
                try:
                    done = subprocess.run(
                        [str(MAIN_PYTHON), str(THROUGHPUT), json.dumps(options)],
                        capture_output=True, text=True, timeout=args.timeout * 3, env=env, check=False,
                    )
                    result = json.loads(done.stdout.strip().splitlines()[-1])
                except Exception as exc:
                    log.append(f"throughput {sink} {mode} queue={queue}: failed: {exc}")
                    continue
                if sink == "service":
                    result["received"] = len(service.events)
                elif sink == "otlp":
                    result["received"] = len(receiver.spans)
                results.append(result)
                print(
                    f"  throughput {sink:<10} {mode:<8} queue={queue or 'default':<7} "
                    f"{result['events_per_s']:>9.0f} ev/s "
                    f"dropped={result['dropped']} peak_rss={result['peak_rss_kb'] / 1024:.0f} MiB",
                    flush=True,
                )
    finally:
        service.stop()
        receiver.stop()
        if postgres is not None:
            postgres.cleanup()
    return results


def run_export_throughput_script(args: argparse.Namespace, log: list[str]) -> str | None:
    """``benchmarks/export_throughput.py`` (the SQL exporter's own profiles, paced producer); its text output."""
    script = BENCH_DIR / "export_throughput.py"
    if not script.exists():
        log.append("export_throughput.py not found; skipped")
        return None
    spans = "2000" if args.quick else str(args.spans)
    backends = "sqlite" if args.no_postgres else "sqlite,postgres"
    try:
        done = subprocess.run(
            [str(MAIN_PYTHON), str(script), "--spans", spans, "--backends", backends],
            capture_output=True, text=True, timeout=args.timeout * 6, check=False,
        )
    except subprocess.TimeoutExpired:
        log.append("export_throughput.py timed out")
        return None
    print(done.stdout, flush=True)
    return done.stdout + (f"\n[exit {done.returncode}]\n{done.stderr[-2000:]}" if done.returncode else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny counts (smoke check)")
    parser.add_argument("--no-peers", action="store_true", help="skip the peer instrumentations")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL throughput run")
    parser.add_argument("--no-throughput", action="store_true", help="skip the export throughput runs")
    parser.add_argument(
        "--with-export-throughput", action="store_true",
        help="also run benchmarks/export_throughput.py (SQL exporter profiles) and keep its output in the JSON",
    )
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default 20)")
    parser.add_argument("--calls", type=int, default=20, help="calls per block (default 20)")
    parser.add_argument("--spans", type=int, default=100_000, help="spans per throughput run (default 100,000)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a worker may take for one block")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="output directory")
    parser.add_argument("--name", default=None, help="output file stem (default: today's date)")
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    log: list[str] = []
    started = time.time()
    configs = build_configs(args, log)
    cases = build_cases(args, configs)
    print(f"configurations: {', '.join(configs)}; {len(cases)} cases", flush=True)
    server = BenchOpenAIServer(default_chunks=50).start()
    try:
        samples, info = run_overhead(args, configs, cases, server.base_url, log)
    finally:
        server.stop()
    throughput = [] if args.no_throughput else run_throughput(args, log)
    sql_profiles = run_export_throughput_script(args, log) if args.with_export_throughput else None

    summary = report.summarise(cases, samples, configs)
    results = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "quick": args.quick,
        "rounds": 2 if args.quick else args.rounds,
        "machine": report.machine_info(),
        "configs": {
            name: {"label": c.label, "kind": c.kind, "note": c.note, "spec": c.spec, "info": info.get(name, {})}
            for name, c in configs.items()
        },
        "cases": summary,
        "throughput": throughput,
        "export_throughput_script": sql_profiles,
        "log": log,
        "elapsed_s": time.time() - started,
    }
    results["targets"] = report.targets(results)
    stem = args.name or dt.date.today().isoformat()
    json_path = args.out / f"{stem}.json"
    md_path = args.out / f"{stem}.md"
    png_path = args.out / f"{stem}.png"
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    table = report.markdown(results)
    md_path.write_text(table)
    try:
        report.plot(results, png_path)
    except Exception as exc:  # a missing matplotlib must not lose the numbers
        log.append(f"plot failed: {exc}")
        print(f"plot failed: {exc}", file=sys.stderr)
    print(table)
    print(f"wrote {json_path}, {md_path}, {png_path} in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
