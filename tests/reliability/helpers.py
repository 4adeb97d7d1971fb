"""Shared pieces of the reliability suite: stub LLM calls through the real wrapper, gated exporters, subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import wrapt
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from leanllm_otel import semconv as sc
from leanllm_otel.instrumentation.instrumentor import LeanLLMInstrumentor
from leanllm_otel.instrumentation.wrappers import OperationSpec, make_wrapper

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"


def traced_stub(function: Callable[..., Any], *, is_async: bool = False) -> Callable[..., Any]:
    """``function`` behind the instrumentor's own call wrapper (the code path of ``litellm.completion``).

    For load tests: the full span path (attributes, sampling, processor, queue) runs; LiteLLM's own
    per-call cost (milliseconds with ``mock_response``) does not, so 100,000 calls fit in seconds.
    """
    state = LeanLLMInstrumentor()._state
    spec = OperationSpec("completion", sc.OP_CHAT, is_async)
    return wrapt.FunctionWrapper(function, make_wrapper(state, spec))


class FakeResponse:
    """Just enough of a ModelResponse for the attribute reader."""

    def __init__(self, tag: str) -> None:
        self.id = f"resp-{tag}"
        self.model = "gpt-4o-mini"
        self.choices = [{"finish_reason": "stop", "message": {"role": "assistant", "content": f"echo {tag}"}}]
        self.usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def stub_completion(*, model: str, messages: Sequence[Any], stream: bool = False, fail: bool = False,
                    tag: str = "", **_: Any) -> Any:
    if fail:
        raise RuntimeError(f"injected failure {tag}")
    if stream:
        return iter([FakeResponse(tag), FakeResponse(tag)])
    return FakeResponse(tag)


class CollectingExporter(SpanExporter):
    """Keeps exported spans; ``gate`` (when set) blocks every export until it opens; ``hang`` never returns."""

    def __init__(self, gate: threading.Event | None = None, delay_s: float = 0.0) -> None:
        self.gate = gate
        self.delay_s = delay_s
        self._lock = threading.Lock()
        self.spans: list[ReadableSpan] = []
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.gate is not None:
            self.gate.wait(60.0)
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            self.calls += 1
            self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def event_ids(self) -> list[str]:
        with self._lock:
            return [str((s.attributes or {}).get(sc.LEANLLM_REQUEST_ID)) for s in self.spans]

    def shutdown(self) -> None:
        if self.gate is not None:
            self.gate.set()


class DropRecorder:
    """An ``on_dropped_events`` callback that remembers every call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[tuple[int, str]] = []

    def __call__(self, count: int, reason: str) -> None:
        with self._lock:
            self.calls.append((count, reason))

    @property
    def total(self) -> int:
        with self._lock:
            return sum(count for count, _ in self.calls)

    def reasons(self) -> set[str]:
        with self._lock:
            return {reason for _, reason in self.calls}


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEANLLM_", "OTEL_", "PYTEST_"))}
    env.update(
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_LOG="ERROR",
        PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO), str(REPO / "src")]),  # REPO: the loopback servers
    )
    env.update(extra)
    return env


def run_python(code: str, *, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (the venv's), bounded by ``timeout`` (killed after it)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else subprocess_env(),
        cwd=str(REPO),
    )
