"""Zero-code: ``opentelemetry-instrument python app.py`` exactly as a user runs it.

The real ``.venv/bin/opentelemetry-instrument`` command runs ``examples/zero_code_app.py`` (no telemetry code) in a
subprocess. OTLP goes to the loopback ``otlp_receiver``, the SQL store is a SQLite file; both are read after the
process exited, so everything seen here was flushed by the exit path alone.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import litellm
import openai
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from leanllm_otel import semconv as sc
from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.exporters.from_env import LeanLLMSpanExporter
from leanllm_otel.instrumentation.instrumentor import LeanLLMInstrumentor
from leanllm_otel.settings import TelemetrySettings
from support import OpenAIServer, OTLPReceiver

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "zero_code_app.py"
BIN = Path(sys.executable).parent
INSTRUMENT = BIN / "opentelemetry-instrument"

PLANTED_EMAIL = "planted.person@example.org"
PROMPT = f"Please write to {PLANTED_EMAIL} about the invoice"


def run_instrumented(
    openai_server: OpenAIServer,
    receiver: OTLPReceiver,
    database_url: str,
    models: list[str],
    **env: str,
) -> subprocess.CompletedProcess[str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "LEANLLM_"))  # the test decides every setting
    }
    environ.update(
        {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "OPENAI_COMPATIBLE_API_BASE": openai_server.base_url,
            "ZERO_CODE_PROMPT": PROMPT,
            "OTEL_TRACES_EXPORTER": "otlp,leanllm",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.traces_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_SERVICE_NAME": "zero-code-test",
            "LEANLLM_DATABASE_URL": database_url,
        }
    )
    environ.update(env)
    result = subprocess.run(
        [str(INSTRUMENT), sys.executable, str(APP), *models],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def sqlite_rows(database_url: str) -> list[dict[str, Any]]:
    path = database_url.removeprefix("sqlite:///")
    if not Path(path).exists():
        return []
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "leanllm_events" not in tables:
            return []
        return [dict(r) for r in conn.execute("SELECT * FROM leanllm_events")]


def database_bytes(database_url: str) -> bytes:
    path = Path(database_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))  # main file, -wal, -journal


def llm_spans(receiver: OTLPReceiver) -> list[dict[str, Any]]:
    return [s for s in receiver.spans if sc.LEANLLM_REQUEST_ID in s["attributes"]]


def test_full_mode_same_span_reaches_sqlite_and_otlp(
    openai_server: OpenAIServer, otlp_receiver: OTLPReceiver, sqlite_url: str
) -> None:
    result = run_instrumented(
        openai_server,
        otlp_receiver,
        sqlite_url,
        ["openai/gpt-4o-mini"],
        LEANLLM_CAPTURE_CONTENT="true",
        LEANLLM_REDACTION_MODE="full",
    )
    assert "openai/gpt-4o-mini: echo:" in result.stdout  # the app's own result is untouched
    rows = sqlite_rows(sqlite_url)
    spans = llm_spans(otlp_receiver)
    assert len(rows) == 1 and len(spans) == 1, (rows, spans)
    row, span = rows[0], spans[0]
    assert span["attributes"][sc.LEANLLM_REQUEST_ID] == row["event_id"]
    assert span["trace_id"] == row["trace_id"] and span["span_id"] == row["span_id"]
    assert span["name"] == "chat gpt-4o-mini" and span["kind"] == "CLIENT"
    assert span["resource"]["service.name"] == "zero-code-test"
    # One renderer produced both: the same content in the same form.
    assert row["input_messages"] is not None and PLANTED_EMAIL in row["input_messages"]
    assert span["attributes"][sc.GEN_AI_INPUT_MESSAGES] == row["input_messages"]


def test_redaction_applies_to_otlp_and_sqlite_alike(
    openai_server: OpenAIServer, otlp_receiver: OTLPReceiver, sqlite_url: str
) -> None:
    run_instrumented(openai_server, otlp_receiver, sqlite_url, ["openai/gpt-4o-mini"], LEANLLM_CAPTURE_CONTENT="true")
    rows = sqlite_rows(sqlite_url)
    spans = llm_spans(otlp_receiver)
    assert len(rows) == 1 and len(spans) == 1
    assert spans[0]["attributes"][sc.LEANLLM_REQUEST_ID] == rows[0]["event_id"]
    assert spans[0]["attributes"][sc.LEANLLM_REDACTION_MODE] == rows[0]["redaction_mode"] == "redacted"
    # The raw value never leaves the process, through either exporter.
    assert PLANTED_EMAIL.encode() not in database_bytes(sqlite_url)
    assert all(PLANTED_EMAIL.encode() not in body for body in otlp_receiver.raw_bodies)
    # ... and both carry the same redacted form, produced once by the processor's renderer.
    assert "[PII:EMAIL]" in (rows[0]["input_messages"] or "")
    assert spans[0]["attributes"][sc.GEN_AI_INPUT_MESSAGES] == rows[0]["input_messages"]


def test_sampling_applies_to_otlp_too(
    openai_server: OpenAIServer, otlp_receiver: OTLPReceiver, sqlite_url: str
) -> None:
    result = run_instrumented(
        openai_server,
        otlp_receiver,
        sqlite_url,
        ["openai/gpt-4o-mini", "openai/err-500"],
        LEANLLM_SAMPLING_RATE="0",
    )
    assert "openai/err-500: error" in result.stdout
    assert len(openai_server.requests) == 2  # both calls really happened
    rows = sqlite_rows(sqlite_url)
    spans = llm_spans(otlp_receiver)
    # The sampled-out success reaches neither exporter; the error reaches both.
    assert [r["status"] for r in rows] == ["error"]
    assert [s["status"]["code"] for s in spans] == ["ERROR"]
    assert spans[0]["attributes"][sc.LEANLLM_REQUEST_ID] == rows[0]["event_id"]
    assert spans[0]["attributes"][sc.GEN_AI_REQUEST_MODEL] == rows[0]["model"] == "err-500"


def test_leanllm_exporter_alone(openai_server: OpenAIServer, otlp_receiver: OTLPReceiver, sqlite_url: str) -> None:
    run_instrumented(openai_server, otlp_receiver, sqlite_url, ["openai/gpt-4o-mini"], OTEL_TRACES_EXPORTER="leanllm")
    rows = sqlite_rows(sqlite_url)
    assert len(rows) == 1 and rows[0]["model"] == "gpt-4o-mini" and rows[0]["status"] == "ok"
    assert otlp_receiver.exports == []  # no OTLP exporter was asked for


def test_disabled_instrumentation(openai_server: OpenAIServer, otlp_receiver: OTLPReceiver, sqlite_url: str) -> None:
    result = run_instrumented(
        openai_server,
        otlp_receiver,
        sqlite_url,
        ["openai/gpt-4o-mini"],
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="leanllm",
    )
    assert "openai/gpt-4o-mini: echo:" in result.stdout
    assert len(openai_server.requests) == 1
    assert sqlite_rows(sqlite_url) == []
    assert llm_spans(otlp_receiver) == []


def test_configurator_is_leanllm_when_named(
    openai_server: OpenAIServer, otlp_receiver: OTLPReceiver, sqlite_url: str
) -> None:
    """``OTEL_PYTHON_CONFIGURATOR=leanllm`` (what to set when opentelemetry-distro is installed too) selects ours."""
    run_instrumented(
        openai_server,
        otlp_receiver,
        sqlite_url,
        ["openai/gpt-4o-mini", "openai/err-500"],
        OTEL_PYTHON_CONFIGURATOR="leanllm",
        LEANLLM_SAMPLING_RATE="0",
    )
    assert [r["status"] for r in sqlite_rows(sqlite_url)] == ["error"]
    assert [s["status"]["code"] for s in llm_spans(otlp_receiver)] == ["ERROR"]


def test_leanllm_exporter_samples_when_another_configurator_feeds_it(
    openai_server: OpenAIServer, sqlite_url: str
) -> None:
    """What ``opentelemetry-distro``'s configurator builds: a plain batch processor in front of our exporter."""
    provider = TracerProvider()
    provider.add_span_processor(
        SimpleSpanProcessor(LeanLLMSpanExporter(LeanLLMConfig(database_url=sqlite_url, sampling_rate=0.0)))
    )
    instrumentor = LeanLLMInstrumentor()
    instrumentor.instrument(tracer_provider=provider, settings=TelemetrySettings(sampling_rate=0.0))
    try:
        for model in ("openai/gpt-4o-mini", "openai/err-500"):
            with contextlib.suppress(openai.OpenAIError):
                litellm.completion(
                    model=model,
                    api_base=openai_server.base_url,
                    api_key="sk-test",
                    max_retries=0,
                    messages=[{"role": "user", "content": PROMPT}],
                )
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    assert len(openai_server.requests) == 2
    assert [r["status"] for r in sqlite_rows(sqlite_url)] == ["error"]
