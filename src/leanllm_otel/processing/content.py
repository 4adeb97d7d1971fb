"""``ContentRenderer``: a kept call's ``CallRecord`` as final span attributes, on the export thread.

What a record becomes, by ``record.mode`` (resolved per call > context > config) and ``record.capture``:

=============  =================================================================================================
mode           attributes
=============  =================================================================================================
any            ``leanllm.content.input_chars`` / ``output_chars``, ``leanllm.content.input_messages`` /
               ``output_messages``, ``leanllm.content.captured``; with ``record.scan`` also
               ``leanllm.security.findings`` (``{type: count}``), ``finding_types``, ``max_severity``
full           + ``gen_ai.system_instructions``, ``gen_ai.input.messages``, ``gen_ai.output.messages``,
               ``gen_ai.tool.definitions``, ``leanllm.tool_calls`` verbatim (semconv JSON parts)
redacted       the same, PII and secrets replaced by ``[PII:EMAIL]``-style markers
hashed         the same structure, every text a keyed ``hmac-sha256:<hex>`` digest
metadata       nothing more
=============  =================================================================================================

``record.capture`` False means no content attributes in any mode. Each content attribute is capped at
``settings.max_content_chars`` inside the JSON (``"truncated": true`` on cut parts, ``leanllm.content.truncated``
on the span), so it always parses. ``leanllm.error.message`` follows the mode (see ``render_error_message``).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from leanllm_otel import semconv as sc
from leanllm_otel.event import findings_text
from leanllm_otel.processing.call_parts import call_input, call_output
from leanllm_otel.processing.capping import encode_capped
from leanllm_otel.processing.detectors import Detector, max_severity, summarize
from leanllm_otel.processing.messages import (
    Conversation,
    chat_input,
    prompt_input,
    response_output,
    responses_input,
    stream_output,
)
from leanllm_otel.processing.parts import Message, tool_definitions
from leanllm_otel.processing.record import CallRecord
from leanllm_otel.processing.redaction import ModePolicy, detector_for, fallback_hash_key, render_error_message
from leanllm_otel.redaction_mode import RedactionMode
from leanllm_otel.settings import TelemetrySettings


class ContentRenderer:
    """Renders content attributes for one pipeline. Thread-safe; the detector is compiled on first need.

    ``hash_key`` keys the ``hashed`` mode (the pipeline passes ``LEANLLM_HASH_KEY``); without one, a per-process
    random key is used and one warning is logged. ``detector`` overrides the detector built from the settings.
    """

    def __init__(
        self,
        settings: TelemetrySettings,
        hash_key: bytes | None = None,
        *,
        detector: Detector | None = None,
    ) -> None:
        self.settings = settings
        self._hash_key = hash_key
        self._detector = detector
        self._lock = threading.Lock()

    # --- resources -----------------------------------------------------------------------------------------------
    def detector(self) -> Detector:
        """The detector in use (built from the settings on first call)."""
        if self._detector is None:
            with self._lock:
                if self._detector is None:
                    self._detector = detector_for(self.settings)
        return self._detector

    def hash_key(self) -> bytes:
        """The HMAC key: the configured one, else the per-process fallback (warned once)."""
        return self._hash_key if self._hash_key is not None else fallback_hash_key()

    # --- rendering -----------------------------------------------------------------------------------------------
    def render(self, record: CallRecord) -> dict[str, Any]:
        """The attributes ``record`` contributes to its span (never raw content outside ``full``)."""
        out: dict[str, Any] = {}
        if record.capture or record.scan:
            self._render_content(record, out)
        if self.settings.auto_normalize:
            self._normalize(record, out)
        if record.error_message is not None:
            mode = record.mode
            message = render_error_message(
                record.error_message,
                mode,
                capture=record.capture,
                cap=self.settings.max_content_chars,
                detector=self.detector() if _redacts_error(mode, record.capture) else None,
                key=self.hash_key() if mode is RedactionMode.HASHED else None,
                credentials=record.credentials,
            )
            if message is not None:
                out[sc.LEANLLM_ERROR_MESSAGE] = message
        return out

    def _normalize(self, record: CallRecord, out: dict[str, Any]) -> None:
        """Content-free features of input and output (``auto_normalize``); hashes only with a configured key."""
        from leanllm_otel.normalize import normalize_input, normalize_output

        source = record.messages if record.messages is not None else record.prompt
        if source is not None:
            out[sc.LEANLLM_NORMALIZED_INPUT] = json.dumps(normalize_input(source, hash_key=self._hash_key))
        output: Any = record.response
        if output is None and record.chunks:
            output = stream_output(record.chunks, ModePolicy(RedactionMode.FULL, scan=False, detector=None, key=None))
        if output is not None and record.operation != sc.OP_EMBEDDINGS:
            out[sc.LEANLLM_NORMALIZED_OUTPUT] = json.dumps(normalize_output(output, hash_key=self._hash_key))

    def _render_content(self, record: CallRecord, out: dict[str, Any]) -> None:
        emit = record.capture and record.mode is not RedactionMode.METADATA
        mode = record.mode if emit else RedactionMode.METADATA
        needs_detector = record.scan or mode is RedactionMode.REDACTED
        policy = ModePolicy(
            mode,
            scan=record.scan,
            detector=self.detector() if needs_detector else None,
            key=self.hash_key() if mode is RedactionMode.HASHED else None,
        )
        conversation = _input(record, policy)
        input_chars = policy.take_chars()
        output = _output(record, policy)
        output_chars = policy.take_chars()

        out[sc.LEANLLM_INPUT_CHARS] = input_chars
        out[sc.LEANLLM_OUTPUT_CHARS] = output_chars
        out[sc.LEANLLM_INPUT_MESSAGE_COUNT] = conversation.count
        out[sc.LEANLLM_OUTPUT_MESSAGE_COUNT] = len(output)
        out[sc.LEANLLM_CONTENT_CAPTURED] = emit
        if emit:
            truncated = self._emit(out, conversation, output, record, policy)
            if truncated:
                out[sc.LEANLLM_CONTENT_TRUNCATED] = True
        if record.scan:
            findings = policy.findings
            counts = summarize(findings)
            out[sc.LEANLLM_SECURITY_FINDINGS] = findings_text(counts)
            if counts:
                out[sc.LEANLLM_SECURITY_FINDING_TYPES] = sorted(counts)
                severity = max_severity(findings)
                if severity is not None:
                    out[sc.LEANLLM_SECURITY_MAX_SEVERITY] = severity.name

    def _emit(
        self,
        out: dict[str, Any],
        conversation: Conversation,
        output: list[Message],
        record: CallRecord,
        policy: ModePolicy,
    ) -> bool:
        cap = self.settings.max_content_chars
        truncated = False
        tool_calls = [part for message in output for part in message["parts"] if part.get("type") == "tool_call"]
        values: list[tuple[str, list[dict[str, Any]]]] = [
            (sc.GEN_AI_SYSTEM_INSTRUCTIONS, conversation.system),
            (sc.GEN_AI_INPUT_MESSAGES, conversation.messages),
            (sc.GEN_AI_OUTPUT_MESSAGES, output),
            (sc.GEN_AI_TOOL_DEFINITIONS, tool_definitions(record.tools, policy) if record.tools else []),
            # A copy: encode_capped cuts in place, and the same parts also sit in the output messages.
            (sc.LEANLLM_TOOL_CALLS, [dict(part) for part in tool_calls]),
        ]
        for attribute, items in values:
            if not items:
                continue
            text, cut = encode_capped(items, cap)
            out[attribute] = text
            truncated = truncated or cut
        return truncated


def _input(record: CallRecord, policy: ModePolicy) -> Conversation:
    conversation = call_input(record, policy)
    if conversation is not None:
        return conversation
    if record.messages is not None:
        return chat_input(record.messages, policy)
    if record.prompt is None and "instructions" not in record.extra:
        return Conversation()
    if record.operation == sc.OP_CHAT:  # the Responses API: ``input`` items and ``instructions``
        return responses_input(record.prompt, record.extra.get("instructions"), policy)
    return prompt_input(record.prompt, policy)


def _output(record: CallRecord, policy: ModePolicy) -> list[Message]:
    if record.operation == sc.OP_EMBEDDINGS:
        return []  # vectors are not content
    output = call_output(record, policy)
    if output is not None:
        return output
    if record.chunks:
        return stream_output(record.chunks, policy)
    return response_output(record.response, policy)


def _redacts_error(mode: RedactionMode, capture: bool) -> bool:
    return mode is RedactionMode.REDACTED or (mode is RedactionMode.FULL and not capture)
