"""No unredacted content reaches any exporter (invariant 3), end to end through the real instrumentor.

Planted PII, a planted secret, a plain content marker and a base64 image payload travel through LiteLLM calls
(chat, stream with tool calls, Responses API, an error that echoes them) to three destinations: an in-memory
exporter and an OTLP/HTTP exporter behind ``LeanLLMSpanProcessor`` and a ``BatchSpanProcessor`` the user attached
straight to the provider. Every byte each one received is searched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import litellm
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from leanllm_otel import semconv as sc
from leanllm_otel.instrumentation.instrumentor import LeanLLMInstrumentor
from leanllm_otel.processing.processor import LeanLLMSpanProcessor
from leanllm_otel.processing.rendering import Renderer
from leanllm_otel.redaction_mode import RedactionMode
from leanllm_otel.settings import TelemetrySettings

EMAIL = "planted.person@example.org"
SECRET = "AKIAZ3MPLANTED00KEY7"  # an AWS access key id shape, exactly 20 characters
MARKER = "quokka-velvet-7731"  # ordinary content: no detector flags it
IMAGE_B64 = "UExBTlRFRC1JTUFHRS1QQVlMT0FE" * 40  # base64("PLANTED-IMAGE-PAYLOAD") repeated
# The mock server answers "echo: " + the last user text[:50] and puts its first 20 characters in tool arguments,
# so the secret (20 characters) and the e-mail address come back in the output too.
USER_TEXT = f"{SECRET} {EMAIL} {MARKER}"
PLANTED = (EMAIL, SECRET, MARKER)

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": f"Looks things up for {EMAIL}",
            "parameters": {"type": "object", "properties": {"q": {"type": "string", "description": MARKER}}},
        },
    }
]


def _messages() -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": f"You help {EMAIL}. Context {MARKER}."},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{IMAGE_B64}"}},
                {"type": "text", "text": USER_TEXT},
            ],
        },
    ]


def _history() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": f"earlier {MARKER}"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_h",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": json.dumps({"q": EMAIL})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_h", "content": f"found key {SECRET} owned by {EMAIL}"},
        {"role": "user", "content": USER_TEXT},
    ]


class Pipeline:
    """The lead's wiring: in-memory + OTLP behind the processor, plus the user's own processor on the provider."""

    def __init__(self, settings: TelemetrySettings, receiver: Any, hash_key: bytes = b"k") -> None:
        self.receiver = receiver
        self.provider = TracerProvider()
        processor = LeanLLMSpanProcessor(settings, renderer=Renderer(settings, hash_key=hash_key))
        self.memory = InMemorySpanExporter()
        processor.add_span_processor(SimpleSpanProcessor(processor.wrap_exporter(self.memory)))
        otlp = OTLPSpanExporter(endpoint=receiver.traces_endpoint, timeout=5)
        processor.add_span_processor(BatchSpanProcessor(processor.wrap_exporter(otlp), schedule_delay_millis=50))
        self.provider.add_span_processor(processor)
        self.user_memory = InMemorySpanExporter()
        self.provider.add_span_processor(BatchSpanProcessor(self.user_memory, schedule_delay_millis=50))
        self.instrumentor = LeanLLMInstrumentor()
        self.instrumentor.instrument(tracer_provider=self.provider, settings=settings)

    def close(self) -> None:
        self.instrumentor.uninstrument()
        self.provider.shutdown()

    def flush(self, expected_spans: int) -> None:
        assert self.provider.force_flush(10_000)
        self.receiver.wait_for_spans(expected_spans, timeout=10)

    # --- what each exporter received ------------------------------------------------------------------------------
    def spans(self) -> list[ReadableSpan]:
        return list(self.memory.get_finished_spans())

    def llm_spans(self) -> list[ReadableSpan]:
        return [s for s in self.spans() if sc.LEANLLM_REQUEST_ID in (s.attributes or {})]

    def memory_bytes(self) -> bytes:
        return "\n".join(s.to_json() for s in self.spans()).encode()

    def user_bytes(self) -> bytes:
        return "\n".join(s.to_json() for s in self.user_memory.get_finished_spans()).encode()

    def otlp_bytes(self) -> bytes:
        return b"\n".join(self.receiver.raw_bodies)

    def everything(self) -> dict[str, bytes]:
        return {"memory": self.memory_bytes(), "otlp": self.otlp_bytes(), "user": self.user_bytes()}


@pytest.fixture
def make_pipeline(otlp_receiver: Any) -> Iterator[Any]:
    made: list[Pipeline] = []

    def make(mode: RedactionMode, hash_key: bytes = b"k", **settings: Any) -> Pipeline:
        while made:
            made.pop().close()
        otlp_receiver.clear()
        pipeline = Pipeline(
            TelemetrySettings(capture_content=True, explicit_redaction_mode=mode, **settings),
            otlp_receiver,
            hash_key=hash_key,
        )
        made.append(pipeline)
        return pipeline

    try:
        yield make
    finally:
        while made:
            made.pop().close()


def _call_everything(server: Any) -> int:
    """Every call shape once; returns the number of LLM spans it makes."""
    common = {"api_base": server.base_url, "api_key": "sk-test"}
    litellm.completion(model="openai/gpt-4o-mini", messages=_messages(), tools=TOOLS, **common)
    litellm.completion(model="openai/gpt-4o-mini", messages=_history(), **common)
    for _chunk in litellm.completion(model="openai/tools-2", messages=_messages(), tools=TOOLS, stream=True, **common):
        pass
    for _chunk in litellm.completion(model="openai/chunks-6", messages=_messages(), stream=True, **common):
        pass
    litellm.responses(model="openai/gpt-4o-mini", input=USER_TEXT, instructions=f"serve {EMAIL}", **common)
    with pytest.raises(Exception, match="upstream rejected"):
        litellm.completion(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": USER_TEXT}],
            mock_response=Exception(f"upstream rejected key {SECRET} for {EMAIL}: '{MARKER}'"),
        )
    return 6


def _run(make_pipeline: Any, openai_server: Any, mode: RedactionMode, **kw: Any) -> Pipeline:
    pipeline = make_pipeline(mode, **kw)
    expected = _call_everything(openai_server)
    pipeline.flush(expected)
    assert len(pipeline.llm_spans()) == expected
    return pipeline


def _found(blobs: dict[str, bytes], needles: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(where, needle) for where, blob in blobs.items() for needle in needles if needle.encode() in blob]


# --- the invariant, mode by mode -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [RedactionMode.METADATA, RedactionMode.HASHED])
def test_no_planted_text_anywhere(make_pipeline: Any, openai_server: Any, mode: RedactionMode) -> None:
    pipeline = _run(make_pipeline, openai_server, mode)
    blobs = pipeline.everything()
    assert all(blobs.values())  # every exporter received something
    assert _found(blobs, (*PLANTED, IMAGE_B64[:40])) == []
    assert b"[PII:" not in blobs["otlp"]  # no marker either: nothing was rendered as text


def test_redacted_mode_exports_only_markers(make_pipeline: Any, openai_server: Any) -> None:
    pipeline = _run(make_pipeline, openai_server, RedactionMode.REDACTED)
    blobs = pipeline.everything()
    assert _found(blobs, (EMAIL, SECRET, IMAGE_B64[:40])) == []
    for where in ("memory", "otlp"):
        assert b"[PII:EMAIL]" in blobs[where]
        assert b"[SECRET:AWS_KEY]" in blobs[where]
        assert MARKER.encode() in blobs[where]  # ordinary content is kept in redacted mode
    assert MARKER.encode() not in blobs["user"]


def test_full_mode_is_the_positive_control(make_pipeline: Any, openai_server: Any) -> None:
    """The same scan finds the planted text when the mode allows it (so the other tests would catch a leak)."""
    pipeline = _run(make_pipeline, openai_server, RedactionMode.FULL)
    blobs = pipeline.everything()
    for where in ("memory", "otlp"):
        assert {needle for w, needle in _found(blobs, PLANTED) if w == where} == set(PLANTED)
    assert IMAGE_B64[:40].encode() not in blobs["memory"] + blobs["otlp"]  # base64 payloads never leave


@pytest.mark.parametrize("mode", list(RedactionMode))
def test_a_processor_attached_directly_to_the_provider_sees_no_content(
    make_pipeline: Any, openai_server: Any, mode: RedactionMode
) -> None:
    pipeline = _run(make_pipeline, openai_server, mode)
    user = pipeline.user_bytes()
    assert user  # it did receive the spans
    assert _found({"user": user}, (*PLANTED, IMAGE_B64[:40])) == []
    for span in pipeline.user_memory.get_finished_spans():
        attributes = span.attributes or {}
        assert sc.GEN_AI_INPUT_MESSAGES not in attributes
        assert sc.GEN_AI_OUTPUT_MESSAGES not in attributes
        assert sc.LEANLLM_ERROR_MESSAGE not in attributes


# --- details -------------------------------------------------------------------------------------------------------


def _span_with(pipeline: Pipeline, name: str) -> ReadableSpan:
    spans = [s for s in pipeline.llm_spans() if s.name == name]
    assert len(spans) == 1, [s.name for s in pipeline.llm_spans()]
    return spans[0]


def test_error_message_echoing_a_secret_is_redacted(make_pipeline: Any, openai_server: Any) -> None:
    pipeline = _run(make_pipeline, openai_server, RedactionMode.REDACTED)
    error_span = next(s for s in pipeline.llm_spans() if sc.ERROR_TYPE in (s.attributes or {}))
    message = (error_span.attributes or {})[sc.LEANLLM_ERROR_MESSAGE]
    assert "upstream rejected key [SECRET:AWS_KEY] for [PII:EMAIL]" in str(message)
    event = next(e for e in error_span.events if e.name == sc.EXCEPTION_EVENT)
    assert (event.attributes or {})[sc.EXCEPTION_MESSAGE] == message
    # the OTLP copy too
    otlp_error = [s for s in pipeline.receiver.spans if s.get("attributes", {}).get(sc.LEANLLM_ERROR_MESSAGE)]
    assert otlp_error and "[SECRET:AWS_KEY]" in otlp_error[0]["attributes"][sc.LEANLLM_ERROR_MESSAGE]


def test_metadata_mode_omits_the_error_message(make_pipeline: Any, openai_server: Any) -> None:
    pipeline = _run(make_pipeline, openai_server, RedactionMode.METADATA)
    error_span = next(s for s in pipeline.llm_spans() if sc.ERROR_TYPE in (s.attributes or {}))
    assert sc.LEANLLM_ERROR_MESSAGE not in (error_span.attributes or {})
    assert (error_span.attributes or {})[sc.LEANLLM_ERROR_KIND]  # the kind of error remains


def test_streamed_tool_calls_are_assembled_and_redacted(make_pipeline: Any, openai_server: Any) -> None:
    pipeline = _run(make_pipeline, openai_server, RedactionMode.REDACTED)
    span = _span_with(pipeline, "chat tools-2")
    output = json.loads((span.attributes or {})[sc.GEN_AI_OUTPUT_MESSAGES])
    assert output == [
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": "call_0", "name": "lookup", "arguments": {"q": "[SECRET:AWS_KEY]"}},
                {"type": "tool_call", "id": "call_1", "name": "lookup", "arguments": {"q": "[SECRET:AWS_KEY]"}},
            ],
            "finish_reason": "tool_calls",
        }
    ]
    findings = json.loads((span.attributes or {})[sc.LEANLLM_SECURITY_FINDINGS])
    assert findings["AWS_KEY"] >= 3  # input text + two tool-call arguments


def test_multimodal_parts_keep_type_and_size(make_pipeline: Any, openai_server: Any) -> None:
    pipeline = _run(make_pipeline, openai_server, RedactionMode.FULL)
    span = _span_with(pipeline, "chat tools-2")
    attributes = span.attributes or {}
    parts = json.loads(attributes[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"]
    assert parts[0] == {"type": "blob", "modality": "image", "mime_type": "image/png", "size": len(IMAGE_B64) * 3 // 4}
    assert parts[1] == {"type": "text", "content": USER_TEXT}
    assert json.loads(attributes[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [
        {"type": "text", "content": f"You help {EMAIL}. Context {MARKER}."}
    ]
    assert json.loads(attributes[sc.GEN_AI_TOOL_DEFINITIONS])[0]["name"] == "lookup"


def test_hashed_digests_are_stable_per_key_and_differ_across_keys(make_pipeline: Any, openai_server: Any) -> None:
    def input_messages(key: bytes) -> str:
        pipeline = _run(make_pipeline, openai_server, RedactionMode.HASHED, hash_key=key)
        return str((_span_with(pipeline, "chat chunks-6").attributes or {})[sc.GEN_AI_INPUT_MESSAGES])

    first = input_messages(b"key-one")
    again = input_messages(b"key-one")
    other = input_messages(b"key-two")
    assert "hmac-sha256:" in first
    assert first == again
    assert first != other


def test_huge_prompt_is_truncated_but_valid_json(make_pipeline: Any, openai_server: Any) -> None:
    pipeline = make_pipeline(RedactionMode.REDACTED, max_content_chars=2048)
    huge = f"{EMAIL} " + ("lorem ipsum dolor " * 30_000)
    litellm.completion(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": huge}],
        api_base=openai_server.base_url,
        api_key="sk-test",
    )
    pipeline.flush(1)
    attributes = pipeline.llm_spans()[0].attributes or {}
    value = str(attributes[sc.GEN_AI_INPUT_MESSAGES])
    assert len(value) <= 2048
    part = json.loads(value)[0]["parts"][0]
    assert part["truncated"] is True and part["content"].startswith("[PII:EMAIL] lorem ipsum")
    assert attributes[sc.LEANLLM_CONTENT_TRUNCATED] is True
    assert attributes[sc.LEANLLM_INPUT_CHARS] == len(huge)
    received = pipeline.receiver.spans[0]["attributes"][sc.GEN_AI_INPUT_MESSAGES]
    assert json.loads(received)[0]["parts"][0]["truncated"] is True
    assert EMAIL.encode() not in pipeline.otlp_bytes()
