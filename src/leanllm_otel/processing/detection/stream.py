"""Incremental scanning of streamed text: a window over the chunks so a match straddling two is found once."""

from __future__ import annotations

from leanllm_otel.processing.detection.engine import Detector
from leanllm_otel.processing.detection.findings import Finding, sanitize


class StreamScanner:
    """Incremental scanning of streamed text.

    Feeds chunks; keeps an overlap window (``overlap`` characters) so a match straddling two chunks is found
    once. A finding that touches the end of the buffered text may still grow with the next chunk, so it is held
    back (up to ``max_hold`` characters) until text follows it or :meth:`finish` is called. Offsets are global
    (relative to the start of the stream).
    """

    __slots__ = ("_base", "_buf", "_detector", "_emitted_end", "_findings", "_max_hold", "_overlap")

    def __init__(self, detector: Detector, overlap: int = 256, max_hold: int = 16384) -> None:
        if overlap < 1 or max_hold < overlap:
            raise ValueError("overlap must be >= 1 and max_hold >= overlap")
        self._detector = detector
        self._overlap = overlap
        self._max_hold = max_hold
        self._buf = ""
        self._base = 0  # global offset of _buf[0]
        self._emitted_end = 0  # global end of the last reported finding
        self._findings: list[Finding] = []

    def feed(self, chunk: str) -> list[Finding]:
        """Add ``chunk``; return findings not reported before (global offsets)."""
        if not chunk:
            return []
        self._buf += sanitize(chunk)
        return self._advance(final=False)

    def finish(self) -> list[Finding]:
        """Report what is still held in the window; the scanner is then empty (further feeds start afresh)."""
        out = self._advance(final=True)
        self._base += len(self._buf)
        self._buf = ""
        return out

    @property
    def findings(self) -> list[Finding]:
        """Every finding reported so far, in stream order."""
        return list(self._findings)

    def _advance(self, final: bool) -> list[Finding]:
        buf, base = self._buf, self._base
        size = len(buf)
        stable_until = size if final else size - self._overlap
        hold_from = size
        new: list[Finding] = []
        for f in self._detector._find(buf):
            gstart = f.start + base
            if gstart < self._emitted_end:
                continue  # a fragment of something already reported
            if f.end > stable_until and size - f.start < self._max_hold:
                hold_from = min(hold_from, f.start)
                continue
            g = Finding(f.type, f.category, f.severity, gstart, f.end + base)
            new.append(g)
            self._emitted_end = g.end
        keep_from = min(max(0, size - self._overlap), hold_from)
        if keep_from:
            self._buf = buf[keep_from:]
            self._base = base + keep_from
        self._findings.extend(new)
        return new
