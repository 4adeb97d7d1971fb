"""An application's own OTLP exporter, attached directly to its provider, beside ``configure()``.

The direct ``BatchSpanProcessor(OTLPSpanExporter)`` sees the LLM span (it is an ordinary span on the provider) but
never its content: content only exists on the export threads behind ``LeanLLMSpanProcessor``. The OTLP exporter
``configure()`` adds from the environment gets the content in the configured form, as the SQL store does.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import litellm
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from leanllm_otel import semconv as sc
from leanllm_otel.pipeline import configure
from support import OpenAIServer, OTLPReceiver

PLANTED = "alongside-planted-content-7f3a"
CONTENT_KEYS = (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_SYSTEM_INSTRUCTIONS)


@pytest.fixture
def second_receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as receiver:
        yield receiver


def test_directly_attached_exporter_never_receives_content(
    monkeypatch: pytest.MonkeyPatch,
    openai_server: OpenAIServer,
    otlp_receiver: OTLPReceiver,
    second_receiver: OTLPReceiver,
    sqlite_url: str,
) -> None:
    for name in list(os.environ):
        if name.startswith(("LEANLLM_", "OTEL_EXPORTER_OTLP", "OTEL_TRACES_EXPORTER")):
            monkeypatch.delenv(name)
    provider = TracerProvider()
    direct = BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_receiver.traces_endpoint))
    provider.add_span_processor(direct)
    # configure()'s own OTLP path goes to a second receiver.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", second_receiver.traces_endpoint)
    pipeline = configure(tracer_provider=provider, database_url=sqlite_url, capture_content=True, redaction_mode="full")
    try:
        litellm.completion(
            model="openai/gpt-4o-mini",
            api_base=openai_server.base_url,
            api_key="sk-test",
            messages=[
                {"role": "system", "content": f"system {PLANTED}"},
                {"role": "user", "content": f"user {PLANTED}"},
            ],
        )
        assert pipeline.force_flush(10_000)
        assert direct.force_flush(10_000)
    finally:
        pipeline.shutdown(5000)
        provider.shutdown()

    direct_spans = [s for s in otlp_receiver.spans if sc.LEANLLM_REQUEST_ID in s["attributes"]]
    ours = [s for s in second_receiver.spans if sc.LEANLLM_REQUEST_ID in s["attributes"]]
    assert len(direct_spans) == 1 and len(ours) == 1
    assert direct_spans[0]["attributes"][sc.LEANLLM_REQUEST_ID] == ours[0]["attributes"][sc.LEANLLM_REQUEST_ID]
    # The direct exporter: the span's metadata, no content in any attribute, event or byte of any request.
    assert direct_spans[0]["attributes"][sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert not any(key in direct_spans[0]["attributes"] for key in CONTENT_KEYS)
    assert otlp_receiver.raw_bodies and all(PLANTED.encode() not in body for body in otlp_receiver.raw_bodies)
    # Capture was on: the processor's paths carry it (so the absence above is not an accident of settings).
    assert PLANTED in ours[0]["attributes"][sc.GEN_AI_INPUT_MESSAGES]
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as conn:
        (stored,) = conn.execute("SELECT input_messages FROM leanllm_events").fetchone()
    assert PLANTED in stored
