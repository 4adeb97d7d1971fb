"""Redaction modes on records: metadata / hashed / redacted / full, error messages, findings, keys, detector config."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import litellm
import pytest

from leanllm_otel import semconv as sc
from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.processing import redaction
from leanllm_otel.processing.content import ContentRenderer
from leanllm_otel.processing.detectors import Detector, DetectorConfig, default_detector
from leanllm_otel.processing.record import CallRecord
from leanllm_otel.processing.redaction import (
    ModePolicy,
    detector_for,
    digest,
    fallback_hash_key,
    render_error_message,
    strip_url,
)
from leanllm_otel.redaction_mode import RedactionMode
from leanllm_otel.settings import TelemetrySettings

EMAIL = "alice.planted@example.org"
AWS = "AKIAIOSFODNN7EXAMPLE"
MARKER = "zebra-quokka-content"  # plain content, no detector would flag it
CONTENT_ATTRS = (
    sc.GEN_AI_INPUT_MESSAGES,
    sc.GEN_AI_OUTPUT_MESSAGES,
    sc.GEN_AI_SYSTEM_INSTRUCTIONS,
    sc.GEN_AI_TOOL_DEFINITIONS,
    sc.LEANLLM_TOOL_CALLS,
)
DIGEST = re.compile(r"^hmac-sha256:[0-9a-f]{64}$")

MESSAGES = [
    {"role": "system", "content": f"system {MARKER} admin {EMAIL}"},
    {"role": "user", "content": f"user {MARKER} mail {EMAIL} key {AWS}"},
]
TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "d", "parameters": {"type": "object"}}}]


def _response(text: str = f"reply {MARKER} to {EMAIL}") -> Any:
    return litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], mock_response=text)


def record(mode: RedactionMode, *, capture: bool = True, scan: bool = True, **kw: Any) -> CallRecord:
    values: dict[str, Any] = {"messages": list(MESSAGES), "response": _response(), "tools": TOOLS}
    values.update(kw)
    return CallRecord(span_id=1, operation="chat", mode=mode, capture=capture, scan=scan, **values)


def render(rec: CallRecord, key: bytes | None = b"key-1", **settings: Any) -> dict[str, Any]:
    return ContentRenderer(TelemetrySettings(capture_content=True, **settings), hash_key=key).render(rec)


def texts_of(messages_json: str) -> list[str]:
    return [p["content"] for m in json.loads(messages_json) for p in m["parts"] if p["type"] == "text"]


# --- the four modes ----------------------------------------------------------------------------------------------


def test_full_mode_is_verbatim() -> None:
    out = render(record(RedactionMode.FULL))
    assert texts_of(out[sc.GEN_AI_INPUT_MESSAGES]) == [f"user {MARKER} mail {EMAIL} key {AWS}"]
    assert json.loads(out[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [
        {"type": "text", "content": f"system {MARKER} admin {EMAIL}"}
    ]
    assert texts_of(out[sc.GEN_AI_OUTPUT_MESSAGES]) == [f"reply {MARKER} to {EMAIL}"]
    assert out[sc.LEANLLM_CONTENT_CAPTURED] is True


def test_redacted_mode_replaces_pii_and_secrets_with_typed_markers() -> None:
    out = render(record(RedactionMode.REDACTED))
    assert texts_of(out[sc.GEN_AI_INPUT_MESSAGES]) == [f"user {MARKER} mail [PII:EMAIL] key [SECRET:AWS_KEY]"]
    assert texts_of(out[sc.GEN_AI_OUTPUT_MESSAGES]) == [f"reply {MARKER} to [PII:EMAIL]"]
    blob = json.dumps(out)
    assert EMAIL not in blob and AWS not in blob


def test_hashed_mode_replaces_every_text_with_a_keyed_digest() -> None:
    out = render(record(RedactionMode.HASHED), key=b"key-1")
    texts = texts_of(out[sc.GEN_AI_INPUT_MESSAGES]) + texts_of(out[sc.GEN_AI_OUTPUT_MESSAGES])
    assert texts and all(DIGEST.match(t) for t in texts)
    assert texts_of(out[sc.GEN_AI_INPUT_MESSAGES])[0] == digest(b"key-1", f"user {MARKER} mail {EMAIL} key {AWS}")
    blob = json.dumps(out)
    assert MARKER not in blob and EMAIL not in blob and AWS not in blob
    # the tool schema is developer content too: names stay, the rest is digested or dropped
    assert json.loads(out[sc.GEN_AI_TOOL_DEFINITIONS]) == [
        {"type": "function", "name": "lookup", "description": digest(b"key-1", "d")}
    ]


def test_digests_are_stable_per_key_and_differ_across_keys() -> None:
    first = render(record(RedactionMode.HASHED), key=b"key-1")[sc.GEN_AI_INPUT_MESSAGES]
    again = render(record(RedactionMode.HASHED), key=b"key-1")[sc.GEN_AI_INPUT_MESSAGES]
    other = render(record(RedactionMode.HASHED), key=b"key-2")[sc.GEN_AI_INPUT_MESSAGES]
    assert first == again
    assert first != other


def test_metadata_mode_exports_sizes_counts_and_findings_only() -> None:
    out = render(record(RedactionMode.METADATA))
    assert not any(attr in out for attr in CONTENT_ATTRS)
    assert out[sc.LEANLLM_CONTENT_CAPTURED] is False
    assert out[sc.LEANLLM_INPUT_CHARS] == len(MESSAGES[0]["content"]) + len(MESSAGES[1]["content"])
    assert out[sc.LEANLLM_OUTPUT_CHARS] == len(f"reply {MARKER} to {EMAIL}")
    assert out[sc.LEANLLM_INPUT_MESSAGE_COUNT] == 2
    assert out[sc.LEANLLM_OUTPUT_MESSAGE_COUNT] == 1
    assert json.loads(out[sc.LEANLLM_SECURITY_FINDINGS]) == {"EMAIL": 3, "AWS_KEY": 1}
    blob = json.dumps(out)
    assert MARKER not in blob and EMAIL not in blob


def test_capture_off_means_no_content_attributes_in_any_mode() -> None:
    for mode in RedactionMode:
        out = render(record(mode, capture=False))
        assert not any(attr in out for attr in CONTENT_ATTRS), mode
        assert sc.LEANLLM_SECURITY_FINDINGS in out


@pytest.mark.parametrize("mode", list(RedactionMode))
def test_findings_in_every_mode_without_the_matched_text(mode: RedactionMode) -> None:
    out = render(record(mode))
    assert json.loads(out[sc.LEANLLM_SECURITY_FINDINGS]) == {"EMAIL": 3, "AWS_KEY": 1}
    assert list(out[sc.LEANLLM_SECURITY_FINDING_TYPES]) == ["AWS_KEY", "EMAIL"]
    assert out[sc.LEANLLM_SECURITY_MAX_SEVERITY] == "CRITICAL"
    findings_blob = out[sc.LEANLLM_SECURITY_FINDINGS] + json.dumps(list(out[sc.LEANLLM_SECURITY_FINDING_TYPES]))
    assert EMAIL not in findings_blob and AWS not in findings_blob


def test_tool_arguments_are_scanned_and_redacted() -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": f'{{"to": "{EMAIL}"}}'}}
            ],
        },
    ]
    out = render(record(RedactionMode.REDACTED, messages=messages, response=_response("ok")))
    parts = json.loads(out[sc.GEN_AI_INPUT_MESSAGES])[1]["parts"]
    assert parts == [{"type": "tool_call", "id": "c", "name": "f", "arguments": {"to": "[PII:EMAIL]"}}]
    assert json.loads(out[sc.LEANLLM_SECURITY_FINDINGS]) == {"EMAIL": 1}


def test_no_scan_means_no_findings_attributes() -> None:
    out = render(record(RedactionMode.REDACTED, scan=False))
    assert sc.LEANLLM_SECURITY_FINDINGS not in out
    assert "[PII:EMAIL]" in out[sc.GEN_AI_INPUT_MESSAGES]  # redaction still happens


def test_clean_content_scanned_gives_an_empty_findings_object() -> None:
    out = render(record(RedactionMode.FULL, messages=[{"role": "user", "content": "hello"}], response=_response("hi")))
    assert out[sc.LEANLLM_SECURITY_FINDINGS] == "{}"
    assert sc.LEANLLM_SECURITY_MAX_SEVERITY not in out


def test_huge_prompt_is_truncated_inside_valid_json() -> None:
    huge = f"{EMAIL} " + "lorem ipsum " * 20_000
    out = render(record(RedactionMode.REDACTED, messages=[{"role": "user", "content": huge}]), max_content_chars=4096)
    value = out[sc.GEN_AI_INPUT_MESSAGES]
    assert len(value) <= 4096
    part = json.loads(value)[0]["parts"][0]
    assert part["truncated"] is True
    assert part["content"].startswith("[PII:EMAIL] lorem ipsum")
    assert out[sc.LEANLLM_CONTENT_TRUNCATED] is True
    assert out[sc.LEANLLM_INPUT_CHARS] == len(huge)  # sizes describe the real content


# --- error messages ----------------------------------------------------------------------------------------------

ERROR = f"Invalid request: prompt '{MARKER}' from {EMAIL} with {AWS}"


@pytest.mark.parametrize(
    ("mode", "capture", "expected"),
    [
        (RedactionMode.FULL, True, ERROR),
        (RedactionMode.FULL, False, f"Invalid request: prompt '{MARKER}' from [PII:EMAIL] with [SECRET:AWS_KEY]"),
        (RedactionMode.REDACTED, True, f"Invalid request: prompt '{MARKER}' from [PII:EMAIL] with [SECRET:AWS_KEY]"),
        (RedactionMode.HASHED, True, digest(b"key-1", ERROR)),
        (RedactionMode.METADATA, True, None),
    ],
)
def test_error_message_follows_the_mode(mode: RedactionMode, capture: bool, expected: str | None) -> None:
    rec = CallRecord(span_id=1, operation="chat", mode=mode, capture=capture, scan=False, error_message=ERROR)
    out = render(rec)
    assert out.get(sc.LEANLLM_ERROR_MESSAGE) == expected


def test_error_message_is_capped() -> None:
    message = render_error_message("x" * 10_000, RedactionMode.FULL, capture=True, cap=300, detector=None, key=None)
    assert message is not None and len(message) <= 300 and message.endswith("[truncated]")


def test_long_error_message_is_redacted_before_the_cap() -> None:
    message = render_error_message(
        f"{EMAIL} " * 5000, RedactionMode.REDACTED, capture=True, cap=500, detector=default_detector(), key=None
    )
    assert message is not None and EMAIL not in message and message.startswith("[PII:EMAIL] [PII:EMAIL]")


# --- keys, urls, detector configuration ----------------------------------------------------------------------------


def test_missing_hash_key_warns_once_and_uses_one_process_key(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redaction, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="leanllm_otel"):
        first = render(record(RedactionMode.HASHED), key=None)
        second = render(record(RedactionMode.HASHED), key=None)
    warnings = [r for r in caplog.records if "LEANLLM_HASH_KEY" in r.getMessage()]
    assert len(warnings) == 1
    assert first[sc.GEN_AI_INPUT_MESSAGES] == second[sc.GEN_AI_INPUT_MESSAGES]
    assert fallback_hash_key() == fallback_hash_key()
    assert first[sc.GEN_AI_INPUT_MESSAGES] != render(record(RedactionMode.HASHED))[sc.GEN_AI_INPUT_MESSAGES]


def test_no_warning_when_a_key_is_given(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redaction, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="leanllm_otel"):
        render(record(RedactionMode.HASHED), key=b"k")
        render(record(RedactionMode.REDACTED), key=None)
    assert not [r for r in caplog.records if "LEANLLM_HASH_KEY" in r.getMessage()]


def test_strip_url() -> None:
    url = "https://user:pass@host.example:8443/p/a.png?sig=1#f"
    assert strip_url(url, keep_query=False) == "https://host.example:8443/p/a.png"
    assert strip_url(url, keep_query=True) == "https://host.example:8443/p/a.png?sig=1#f"


@dataclass(frozen=True)
class _SettingsWithDetectorFields:
    detector_extra_patterns: dict[str, str] = field(default_factory=lambda: {"TICKET": r"TCK-[0-9]{6}"})
    detector_allowlist: tuple[str, ...] = ("support@example.com",)


def test_detector_uses_extra_patterns_and_allowlist_from_settings() -> None:
    detector = detector_for(_SettingsWithDetectorFields())
    text, findings = detector.redact("ticket TCK-123456 from support@example.com and bob@example.com")
    assert text == "ticket [CUSTOM:TICKET] from support@example.com and [PII:EMAIL]"
    assert sorted(f.type for f in findings) == ["EMAIL", "TICKET"]


def test_detector_follows_the_configured_patterns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEANLLM_DETECTOR_EXTRA_PATTERNS", '{"ORDER": "ORD-[0-9]{5}"}')
    detector = detector_for(TelemetrySettings.from_config(LeanLLMConfig.from_env()))
    assert detector.redact("order ORD-12345")[0] == "order [CUSTOM:ORDER]"
    in_code = TelemetrySettings.from_config(LeanLLMConfig(detector_allowlist=("ada@example.com",)))
    assert "ada@example.com" in detector_for(in_code).redact("mail ada@example.com")[0]
    assert detector_for(TelemetrySettings()) is default_detector()


def test_renderer_accepts_an_explicit_detector() -> None:
    detector = Detector(DetectorConfig(allowlist=(EMAIL,)))
    renderer = ContentRenderer(TelemetrySettings(), hash_key=b"k", detector=detector)
    out = renderer.render(record(RedactionMode.REDACTED))
    assert EMAIL in out[sc.GEN_AI_INPUT_MESSAGES]  # allow-listed
    assert AWS not in out[sc.GEN_AI_INPUT_MESSAGES]


def test_policy_requires_what_its_mode_needs() -> None:
    with pytest.raises(ValueError):
        ModePolicy(RedactionMode.REDACTED, scan=False)
    with pytest.raises(ValueError):
        ModePolicy(RedactionMode.HASHED, scan=False)
