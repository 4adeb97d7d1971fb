"""Benchmark worker: one configuration (bare, ours, a peer, or the span floor) in its own process.

Run by ``run.py`` with any venv's python (the peers' venvs have no leanllm-otel, so only the ``ours`` setup imports
it)::

    python worker.py '{"setup": "bare"}'

then driven over stdin, one JSON command per line, one JSON answer per line on the original stdout (the worker's
own ``sys.stdout`` is pointed at stderr, so nothing a library prints can corrupt the protocol):

    {"op": "block", "workload": "mock_sync", "n": 50, "prompt_bytes": 100, "threads": 1, "tasks": 1,
     "api_base": "http://127.0.0.1:PORT/v1"}
    -> {"times_ns": [...], "cpu_s": ..., "wall_s": ..., "spans": ..., "calls": ...}
    {"op": "info"} -> {"versions": {...}, "rss_kb": ...}
    {"op": "exit"}

``times_ns`` are the per-call times on the calling thread (or task). ``cpu_s`` is the process CPU time of the
whole block (all threads) including flushing the exporter at its end, so export work is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from proc_memory import peak_rss_kb

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("LITELLM_LOG", "ERROR")

_PROTOCOL = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
sys.stdout = sys.stderr

MOCK_MODEL = "gpt-4o-mini"
HTTP_MODEL = "openai/gpt-4o-mini"
STREAM_MODEL = "openai/gpt-4o-mini-chunks-50"
MOCK_RESPONSE = "Hello from the benchmark."
_SENTENCE = "Contact jane.doe@example.com or call 555-0100 about order 12345; key AKIAABCDEFGHIJKLMNOP. "


def prompt_of(size: int) -> str:
    """A deterministic prompt of ``size`` bytes with some PII and a secret-looking token in it."""
    text = _SENTENCE * (size // len(_SENTENCE) + 1)
    return text[:size]


class Setup:
    """Installs one configuration and knows how to flush it and count what it exported."""

    name = "bare"

    def flush(self) -> None:
        return None

    def exported(self) -> int:
        return 0

    def created(self) -> int:
        return self.exported()

    def versions(self) -> dict[str, str]:
        return _versions(("litellm", "openai", "httpx", "opentelemetry-sdk"))


class OursSetup(Setup):
    name = "ours"

    def __init__(self, options: dict[str, Any]) -> None:
        import leanllm_otel

        self.tmp = tempfile.mkdtemp(prefix="leanllm-bench-")
        url = options.get("database_url") or f"sqlite:///{self.tmp}/events.db"
        overrides = {k: v for k, v in options.items() if k not in ("database_url", "deferred")}
        if options.get("deferred") is False:  # the SDK span path on the caller's thread (before issue 16)
            from leanllm_otel.instrumentation import deferred

            deferred.ENABLED = False
        self.pipeline = leanllm_otel.configure(database_url=url, otlp=False, **overrides)

    def flush(self) -> None:
        self.pipeline.force_flush(60_000)

    def exported(self) -> int:
        counters = self.pipeline.counters
        return counters["kept"] + counters["kept_errors"]

    def created(self) -> int:
        counters = self.pipeline.counters
        return counters["kept"] + counters["kept_errors"] + counters["sampled_out"] + counters["head_sampled_out"]

    def versions(self) -> dict[str, str]:
        return {**super().versions(), **_versions(("leanllm-otel",))}


class InMemorySetup(Setup):
    """A TracerProvider with ``BatchSpanProcessor(InMemorySpanExporter())`` (or a simple processor for the floor)."""

    def __init__(self, simple: bool = False, set_global: bool = False) -> None:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        processor = SimpleSpanProcessor(self.exporter) if simple else BatchSpanProcessor(self.exporter)
        self.provider.add_span_processor(processor)
        if set_global:
            trace.set_tracer_provider(self.provider)
        self._count = 0

    def flush(self) -> None:
        self.provider.force_flush(60_000)
        self._count += len(self.exporter.get_finished_spans())
        self.exporter.clear()

    def exported(self) -> int:
        return self._count


class OpenInferenceSetup(InMemorySetup):
    name = "openinference"

    def __init__(self) -> None:
        super().__init__()
        from openinference.instrumentation.litellm import LiteLLMInstrumentor

        LiteLLMInstrumentor().instrument(tracer_provider=self.provider)

    def versions(self) -> dict[str, str]:
        return {**super().versions(), **_versions(("openinference-instrumentation-litellm",))}


class OpenLLMetrySetup(InMemorySetup):
    name = "openllmetry"

    def __init__(self) -> None:
        super().__init__()
        from opentelemetry.instrumentation.litellm import LiteLLMInstrumentor

        LiteLLMInstrumentor().instrument(tracer_provider=self.provider)

    def versions(self) -> dict[str, str]:
        return {**super().versions(), **_versions(("opentelemetry-instrumentation-litellm",))}


class LiteLLMOtelSetup(InMemorySetup):
    name = "litellm_otel"

    def __init__(self) -> None:
        # LiteLLM's OpenTelemetry callback reuses an existing global SDK TracerProvider.
        super().__init__(set_global=True)
        import litellm

        litellm.callbacks = ["otel"]


class FloorSetup(InMemorySetup):
    name = "floor"

    def __init__(self) -> None:
        super().__init__(simple=True)
        self.tracer = self.provider.get_tracer("benchmark.floor")


def _versions(names: tuple[str, ...]) -> dict[str, str]:
    import importlib.metadata as metadata

    out: dict[str, str] = {}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def make_setup(spec: dict[str, Any]) -> Setup:
    kind = spec["setup"]
    if kind == "bare":
        return Setup()
    if kind == "ours":
        return OursSetup(dict(spec.get("options") or {}))
    if kind == "openinference":
        return OpenInferenceSetup()
    if kind == "openllmetry":
        return OpenLLMetrySetup()
    if kind == "litellm_otel":
        return LiteLLMOtelSetup()
    if kind == "floor":
        return FloorSetup()
    raise ValueError(f"unknown setup {kind!r}")


# --- workloads ------------------------------------------------------------------------------------------------
_FLOOR_ATTRIBUTES: dict[str, Any] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.request.temperature": 0.2,
    "gen_ai.request.max_tokens": 256,
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.id": "chatcmpl-123",
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.usage.input_tokens": 42,
    "gen_ai.usage.output_tokens": 7,
    "server.address": "127.0.0.1",
    "server.port": 8080,
}


def _sync_call(setup: Setup, workload: str, messages: list[dict[str, str]], api_base: str | None) -> Callable[[], None]:
    if workload == "floor":
        from opentelemetry.trace import SpanKind

        tracer = setup.tracer  # type: ignore[attr-defined]

        def floor() -> None:
            tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=_FLOOR_ATTRIBUTES).end()

        return floor
    import litellm

    if workload == "mock_sync":

        def mock() -> None:
            litellm.completion(model=MOCK_MODEL, messages=messages, mock_response=MOCK_RESPONSE)

        return mock
    if workload == "http_sync":

        def http() -> None:
            litellm.completion(model=HTTP_MODEL, messages=messages, api_base=api_base, api_key="sk-bench")

        return http
    if workload == "http_stream":

        def stream() -> None:
            for _chunk in litellm.completion(
                model=STREAM_MODEL, messages=messages, api_base=api_base, api_key="sk-bench", stream=True
            ):
                pass

        return stream
    raise ValueError(f"not a sync workload: {workload}")


def _async_call(workload: str, messages: list[dict[str, str]], api_base: str | None) -> Callable[[], Any]:
    import litellm

    if workload == "mock_async":

        async def mock() -> None:
            await litellm.acompletion(model=MOCK_MODEL, messages=messages, mock_response=MOCK_RESPONSE)

        return mock
    if workload == "http_async":

        async def http() -> None:
            await litellm.acompletion(model=HTTP_MODEL, messages=messages, api_base=api_base, api_key="sk-bench")

        return http
    if workload == "http_astream":

        async def stream() -> None:
            response = await litellm.acompletion(
                model=STREAM_MODEL, messages=messages, api_base=api_base, api_key="sk-bench", stream=True
            )
            async for _chunk in response:
                pass

        return stream
    raise ValueError(f"not an async workload: {workload}")


class Worker:
    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.loop = asyncio.new_event_loop()

    def block(self, command: dict[str, Any]) -> dict[str, Any]:
        workload: str = command["workload"]
        n = int(command["n"])
        messages = [{"role": "user", "content": prompt_of(int(command.get("prompt_bytes", 100)))}]
        api_base = command.get("api_base")
        before_spans = self.setup.exported()
        before_created = self.setup.created()
        cpu0 = time.process_time()
        wall0 = time.perf_counter()
        if workload in ("mock_async", "http_async", "http_astream"):
            times = self.loop.run_until_complete(
                self._run_async(_async_call(workload, messages, api_base), n, int(command.get("tasks", 1)))
            )
        else:
            times = self._run_sync(
                _sync_call(self.setup, workload, messages, api_base), n, int(command.get("threads", 1))
            )
        calls_wall = time.perf_counter() - wall0
        self._settle()
        cpu = time.process_time() - cpu0
        return {
            "times_ns": times,
            "cpu_s": cpu,
            "wall_s": calls_wall,
            "spans": self.setup.exported() - before_spans,
            "created": self.setup.created() - before_created,
            "calls": n,
        }

    def _settle(self) -> None:
        """Flush, then wait (bounded) until callbacks running after the call (LiteLLM's logging threads) are done."""
        deadline = time.monotonic() + 5.0
        last = -1
        while True:
            self.setup.flush()
            count = self.setup.exported()
            if count == last or time.monotonic() > deadline:
                return
            last = count
            time.sleep(0.02)

    @staticmethod
    def _run_sync(call: Callable[[], None], n: int, threads: int) -> list[int]:
        clock = time.perf_counter_ns
        if threads <= 1:
            times = []
            for _ in range(n):
                t0 = clock()
                call()
                times.append(clock() - t0)
            return times
        per_thread = max(1, n // threads)
        results: list[list[int]] = [[] for _ in range(threads)]
        start = threading.Barrier(threads)

        def run(slot: list[int]) -> None:
            start.wait()
            for _ in range(per_thread):
                t0 = clock()
                call()
                slot.append(clock() - t0)

        pool = [threading.Thread(target=run, args=(results[i],)) for i in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        return [t for slot in results for t in slot]

    @staticmethod
    async def _run_async(call: Callable[[], Any], n: int, tasks: int) -> list[int]:
        clock = time.perf_counter_ns
        times: list[int] = []
        remaining = [n]

        async def runner() -> None:
            while remaining[0] > 0:
                remaining[0] -= 1
                t0 = clock()
                await call()
                times.append(clock() - t0)

        await asyncio.gather(*(runner() for _ in range(max(1, tasks))))
        return times


def main() -> None:
    spec = json.loads(sys.argv[1])
    setup = make_setup(spec)
    worker = Worker(setup)
    _PROTOCOL.write(json.dumps({"ready": True, "setup": setup.name}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        op = command.get("op")
        try:
            if op == "exit":
                break
            if op == "block":
                answer: dict[str, Any] = worker.block(command)
            elif op == "info":
                answer = {
                    "versions": setup.versions(),
                    "maxrss_kb": peak_rss_kb(),
                }
            else:
                answer = {"error": f"unknown op {op!r}"}
        except Exception as exc:  # reported to the orchestrator, which marks the config as failed
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        _PROTOCOL.write(json.dumps(answer) + "\n")
    setup.flush()
    os._exit(0)  # LiteLLM's logging worker can hang a normal interpreter exit


if __name__ == "__main__":
    main()
