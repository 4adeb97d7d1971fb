"""Telemetry bugs: an exception inside any internal stage never reaches the caller nor changes LiteLLM's result.

``LEANLLM_INTERNAL_ERRORS=log`` puts the package in its production behaviour (log and swallow); under pytest it
would otherwise re-raise internal errors so ordinary tests catch them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import litellm
import pytest
from opentelemetry.sdk.trace import TracerProvider

import leanllm_otel
from leanllm_otel import semconv as sc
from leanllm_otel.instrumentation import invocation as invocation_module
from leanllm_otel.instrumentation import streams as streams_module
from leanllm_otel.processing import content as content_module
from leanllm_otel.processing.processor import LeanLLMSpanProcessor

from .helpers import CollectingExporter

MESSAGES = [{"role": "user", "content": "my email is bob@example.com"}]


class Boom(Exception):
    """The injected telemetry bug."""


def _boom(*_args: Any, **_kwargs: Any) -> Any:
    raise Boom("injected telemetry bug")


@pytest.fixture(autouse=True)
def production_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEANLLM_INTERNAL_ERRORS", "log")


def _calls() -> dict[str, Any]:
    """What LiteLLM answers with telemetry off, as comparable values."""
    ok = litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="the answer")
    chunks = litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="streamed answer", stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    try:
        litellm.completion(
            model="gpt-4o-mini",
            messages=MESSAGES,
            mock_response=litellm.RateLimitError(message="slow down", llm_provider="openai", model="gpt-4o-mini"),
        )
    except litellm.RateLimitError as exc:
        error = (type(exc), exc.message)
    else:  # pragma: no cover
        error = None
    return {
        "content": ok.choices[0].message.content,
        "type": type(ok),
        "usage": (ok.usage.prompt_tokens, ok.usage.completion_tokens),
        "stream": text,
        "error": error,
    }


@pytest.fixture
def baseline() -> dict[str, Any]:
    return _calls()


@pytest.fixture
def pipeline() -> Iterator[tuple[leanllm_otel.Pipeline, CollectingExporter]]:
    exporter = CollectingExporter()
    provider = TracerProvider()
    pipe = leanllm_otel.configure(
        tracer_provider=provider,
        exporters=[exporter],
        otlp=False,
        enable_persistence=False,
        capture_content=True,
        redaction_mode="redacted",
        security_scan=True,
    )
    try:
        yield pipe, exporter
    finally:
        pipe.shutdown()
        provider.shutdown()


STAGES = {
    "request_attributes": (invocation_module, "request_attributes"),
    "response_attributes": (invocation_module, "response_attributes"),
    "stream_usage_attributes": (streams_module, "usage_attributes"),
    "metrics": (invocation_module, "chain_advance"),
    "processor": (LeanLLMSpanProcessor, "_select"),
    "redaction": (content_module.ContentRenderer, "render"),
}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_failing_stage_never_reaches_the_caller(
    stage: str, baseline: dict[str, Any], pipeline: Any, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipe, exporter = pipeline
    owner, name = STAGES[stage]
    monkeypatch.setattr(owner, name, _boom)
    with caplog.at_level(logging.ERROR, logger="leanllm_otel"):
        assert _calls() == baseline
    pipe.force_flush(10_000)
    # The failure was logged, not swallowed silently.
    assert any("internal error" in r.getMessage() for r in caplog.records), stage
    spans = [s for s in exporter.spans if sc.LEANLLM_REQUEST_ID in (s.attributes or {})]
    if stage == "request_attributes":
        assert spans == []  # the call passed through untraced
    elif stage == "processor":
        assert spans == []  # the processor could not decide: nothing is exported, nothing unredacted leaks
        assert pipe.drops.by_reason() == {"internal_error": 3}  # ... and the loss is counted
    else:
        # Every call still produced exactly one span (a span is never left open by a failing stage).
        assert len(spans) == 3, [dict(s.attributes or {}) for s in spans]
    for span in spans:
        for value in (span.attributes or {}).values():
            assert "bob@example.com" not in str(value)  # fail closed: no unredacted content


def test_a_failing_exporter_never_reaches_the_caller(baseline: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    class Exploding(CollectingExporter):
        def export(self, spans: Any) -> Any:
            raise Boom("exporter bug")

    provider = TracerProvider()
    pipe = leanllm_otel.configure(
        tracer_provider=provider, exporters=[Exploding()], otlp=False, enable_persistence=False, batch_size=1
    )
    try:
        assert _calls() == baseline
        assert pipe.force_flush(10_000) in (True, False)
    finally:
        pipe.shutdown()
        provider.shutdown()


def test_a_failing_drop_callback_never_reaches_the_caller(baseline: dict[str, Any]) -> None:
    gate_exporter = CollectingExporter()

    def bad_callback(count: int, reason: str) -> None:
        raise Boom("user callback bug")

    provider = TracerProvider()
    pipe = leanllm_otel.configure(
        tracer_provider=provider, exporters=[gate_exporter], otlp=False, enable_persistence=False,
        queue_max_size=1, batch_size=1, on_dropped_events=bad_callback,
    )
    try:
        for _ in range(3):
            assert _calls() == baseline
    finally:
        pipe.shutdown()
        provider.shutdown()
