"""``leanllm.security.*`` findings in every redaction mode, content captured or not (issue 18 item 2).

Kept calls and every error are scanned on the export thread (prompt and output, streamed output assembled, so a
secret split across chunks is whole again); ``LEANLLM_SECURITY_SCAN=false`` turns it off. What leaves is the
counts and types, never the text: in ``metadata`` mode no content attribute at all.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import litellm
import openai
import pytest

from leanllm_otel import semconv as sc
from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.redaction_mode import RedactionMode
from leanllm_otel.settings import TelemetrySettings

SECRET = "AKIAZ3MPLANTED00KEY7"  # an AWS access key id shape
# The mock server answers "echo: " + the last user text[:50]: the secret comes back in the output...
ECHOED = f"{SECRET} please"
# ... unless it sits past the 50 characters the answer repeats.
PROMPT_ONLY = "x" * 60 + f" {SECRET}"
CONTENT_ATTRIBUTES = (
    sc.GEN_AI_INPUT_MESSAGES,
    sc.GEN_AI_OUTPUT_MESSAGES,
    sc.GEN_AI_SYSTEM_INSTRUCTIONS,
    sc.GEN_AI_TOOL_DEFINITIONS,
    sc.LEANLLM_TOOL_CALLS,
    sc.LEANLLM_ERROR_MESSAGE,
)
DEFAULT = {}
METADATA = {"explicit_redaction_mode": RedactionMode.METADATA}
MODES = pytest.mark.parametrize("settings", [DEFAULT, METADATA], ids=["default-config", "metadata-mode"])


def _call(server: Any, text: str, *, model: str = "openai/gpt-4o-mini", stream: bool = False) -> list[str]:
    """The call; the pieces of text the caller received."""
    response = litellm.completion(
        model=model,
        api_base=server.base_url,
        api_key="sk-test",
        max_retries=0,
        stream=stream,
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": text}],
    )
    if stream:
        return [chunk.choices[0].delta.content or "" for chunk in response]
    return [response.choices[0].message.content]


def _findings(span: Any) -> dict[str, int]:
    return dict(json.loads((span.attributes or {})[sc.LEANLLM_SECURITY_FINDINGS]))


def _assert_no_content(span: Any) -> None:
    attributes = span.attributes or {}
    assert not [name for name in CONTENT_ATTRIBUTES if name in attributes]
    assert attributes[sc.LEANLLM_CONTENT_CAPTURED] is False
    everything = json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in attributes.items()})
    everything += json.dumps([dict(event.attributes or {}) for event in span.events])
    assert SECRET not in everything and "please" not in everything


@MODES
def test_prompt_and_output_are_scanned_without_content_capture(
    make_instrumented: Any, openai_server: Any, settings: dict[str, Any]
) -> None:
    inst = make_instrumented(**settings)
    _call(openai_server, ECHOED)
    span = inst.one_llm_span()
    assert _findings(span) == {"AWS_KEY": 2}  # in the prompt and in the answer
    assert list((span.attributes or {})[sc.LEANLLM_SECURITY_FINDING_TYPES]) == ["AWS_KEY"]
    assert (span.attributes or {})[sc.LEANLLM_SECURITY_MAX_SEVERITY]
    _assert_no_content(span)
    inst.clear()
    _call(openai_server, PROMPT_ONLY)
    assert _findings(inst.one_llm_span()) == {"AWS_KEY": 1}  # the prompt only: the answer does not repeat it


@MODES
def test_a_secret_split_across_streamed_chunks_is_found(
    make_instrumented: Any, openai_server: Any, settings: dict[str, Any]
) -> None:
    inst = make_instrumented(**settings)
    pieces = _call(openai_server, ECHOED, model="openai/chunks-20", stream=True)
    assert SECRET in "".join(pieces) and not [piece for piece in pieces if SECRET in piece]  # really split
    span = inst.one_llm_span()
    assert _findings(span) == {"AWS_KEY": 2}
    _assert_no_content(span)


@pytest.mark.parametrize("rate", [1.0, 0.0], ids=["sampled-in", "sampled-out"])
def test_every_error_is_scanned(make_instrumented: Any, openai_server: Any, rate: float) -> None:
    inst = make_instrumented(sampling_rate=rate, **METADATA)
    with pytest.raises(openai.OpenAIError):
        _call(openai_server, ECHOED, model="openai/err-500")
    span = inst.one_llm_span()
    assert (span.attributes or {})[sc.ERROR_TYPE]
    assert _findings(span) == {"AWS_KEY": 1}  # the prompt (no answer came back)
    _assert_no_content(span)



def test_a_sampled_out_error_is_scanned_but_its_content_never_exported_even_when_capturing(
    make_instrumented: Any, openai_server: Any
) -> None:
    """README "Sampling": "a sampled-out call that fails is kept and scanned for findings, its content never
    exported", also with content capture on in ``full`` mode."""
    inst = make_instrumented(sampling_rate=0.0, capture_content=True, explicit_redaction_mode=RedactionMode.FULL)
    with pytest.raises(openai.OpenAIError):
        _call(openai_server, ECHOED, model="openai/err-500")
    span = inst.one_llm_span()
    assert (span.attributes or {})[sc.ERROR_TYPE]
    assert _findings(span) == {"AWS_KEY": 1}
    assert not [name for name in CONTENT_ATTRIBUTES[:-1] if name in (span.attributes or {})]
    assert SECRET not in json.dumps(dict(span.attributes or {}))

def test_scan_off_means_no_findings(make_instrumented: Any, openai_server: Any) -> None:
    inst = make_instrumented(security_scan=False)
    _call(openai_server, ECHOED)
    _call(openai_server, ECHOED, model="openai/chunks-20", stream=True)
    with contextlib.suppress(openai.OpenAIError):
        _call(openai_server, ECHOED, model="openai/err-500")
    spans = inst.llm_spans()
    assert len(spans) == 3
    for span in spans:
        attributes = span.attributes or {}
        assert not [name for name in attributes if name.startswith("leanllm.security.")]
        assert not [name for name in CONTENT_ATTRIBUTES if name in attributes]


def test_redacted_capture_still_scans_and_redacts(make_instrumented: Any, openai_server: Any) -> None:
    inst = make_instrumented(capture_content=True)  # redacted: findings and the content with markers
    _call(openai_server, ECHOED)
    span = inst.one_llm_span()
    assert _findings(span) == {"AWS_KEY": 2}
    assert "[SECRET:AWS_KEY]" in (span.attributes or {})[sc.GEN_AI_INPUT_MESSAGES]
    assert SECRET not in json.dumps(dict(span.attributes or {}), default=str)


def test_the_environment_turns_scanning_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEANLLM_SECURITY_SCAN", "false")
    assert TelemetrySettings.from_config(LeanLLMConfig.from_env()).scans is False
    monkeypatch.delenv("LEANLLM_SECURITY_SCAN")
    assert TelemetrySettings.from_config(LeanLLMConfig.from_env()).scans is True


def test_a_scan_alone_keeps_references_and_copies_nothing_on_the_callers_thread() -> None:
    settings = TelemetrySettings()
    assert settings.wants_record(RedactionMode.METADATA, per_call_mode=False)
    assert not settings.copies_content(per_call_mode=False)  # CallRecord.seal keeps the references
    assert TelemetrySettings(capture_content=True).copies_content(per_call_mode=False)
    assert not TelemetrySettings(security_scan=False).wants_record(RedactionMode.METADATA, per_call_mode=False)
