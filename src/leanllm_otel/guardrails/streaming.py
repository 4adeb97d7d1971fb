"""Incremental analysis of a streamed response, for calls whose policy stops streams on secrets.

:class:`StreamMonitor` is fed each chunk on the caller's thread (enforcement needs the answer before the chunk is
handed over). Two scans share the text:

- a secrets-only window scan (``scan_window_chars`` of history plus the new text) decides whether to stop: a secret
  split across chunks is caught at the chunk that completes it, and that chunk is never delivered;
- a :class:`~leanllm_otel.processing.detectors.StreamScanner` over every category records findings once each; they
  land on the span at stream end as ``leanllm.security.*``.

Calls without enforcement never get a monitor: their output is scanned, assembled, on the export thread by the
content renderer (when scanning is on and the call is sampled in).
"""

from __future__ import annotations

from typing import Any

from leanllm_otel import semconv as sc
from leanllm_otel.access import get_field
from leanllm_otel.event import findings_text
from leanllm_otel.guardrails.errors import LeanLLMPolicyViolation
from leanllm_otel.processing.detectors import Detector, Finding, StreamScanner, max_severity, summarize

__all__ = ["StreamMonitor", "chunk_text"]


def chunk_text(chunk: Any) -> str:
    """The text a stream chunk adds: chat deltas (content, tool-call arguments), completion text, Responses deltas."""
    pieces: list[str] = []
    choices = get_field(chunk, "choices")
    if choices:
        for choice in choices:
            delta = get_field(choice, "delta")
            if delta is not None:
                content = get_field(delta, "content")
                if isinstance(content, str):
                    pieces.append(content)
                calls = get_field(delta, "tool_calls")
                for call in calls or ():
                    function = get_field(call, "function")
                    args = get_field(function, "arguments")
                    if isinstance(args, str):
                        pieces.append(args)
            text = getattr(choice, "text", None)
            if isinstance(text, str):
                pieces.append(text)
    else:
        delta = getattr(chunk, "delta", None)  # Responses API text delta events
        if isinstance(delta, str):
            pieces.append(delta)
    return "".join(pieces)


class StreamMonitor:
    """Per-stream state; not thread-safe (a stream is consumed by one thread or task at a time)."""

    __slots__ = ("_scanner", "_secrets", "_tail", "_window", "stop_on_secret", "violation")

    def __init__(self, detector: Detector, secrets: Detector, *, stop_on_secret: bool, window_chars: int) -> None:
        self._scanner = StreamScanner(detector, overlap=min(256, window_chars), max_hold=max(16384, window_chars))
        self._secrets = secrets
        self._window = window_chars
        self._tail = ""
        self.stop_on_secret = stop_on_secret
        self.violation: LeanLLMPolicyViolation | None = None

    def feed(self, chunk: Any) -> LeanLLMPolicyViolation | None:
        """Take one chunk; the violation to raise instead of delivering it, or None."""
        if self.violation is not None:
            return self.violation
        text = chunk_text(chunk)
        if not text:
            return None
        self._scanner.feed(text)
        if self.stop_on_secret:
            window = self._tail + text
            fresh = len(self._tail)
            found = [f.type for f in self._secrets.scan(window, remember=False) if f.end > fresh]
            self._tail = window[-self._window :]
            if found:
                self.violation = LeanLLMPolicyViolation("secret_in_output", found, "stream")
                return self.violation
        return None

    def findings(self) -> list[Finding]:
        """Everything found so far, after flushing what the scanner held back."""
        self._scanner.finish()
        return self._scanner.findings

    def end_attributes(self) -> dict[str, Any]:
        """``leanllm.security.*`` for the span, set just before it ends."""
        out: dict[str, Any] = {}
        findings = self.findings()
        counts = summarize(findings)
        if self.violation is not None:
            for name in self.violation.findings:
                counts.setdefault(name, 1)
            out[sc.LEANLLM_SECURITY_BLOCKED] = True
            out[sc.LEANLLM_SECURITY_BLOCK_REASON] = self.violation.reason
        if counts:
            out[sc.LEANLLM_SECURITY_FINDINGS] = findings_text(counts)
            out[sc.LEANLLM_SECURITY_FINDING_TYPES] = sorted(counts)
            severity = max_severity(findings)
            if severity is not None:
                out[sc.LEANLLM_SECURITY_MAX_SEVERITY] = severity.name
            elif self.violation is not None:
                out[sc.LEANLLM_SECURITY_MAX_SEVERITY] = "CRITICAL"
        return out
