"""Findings of recently scanned texts, keyed by a digest of the text (never the text itself).

Chat requests resend the system prompt and every earlier turn on each call, so without a memory the export
thread scans the same texts again and again (a 20-turn conversation scans its first message 20 times). A scan
is deterministic for one :class:`~leanllm_otel.processing.detection.engine.Detector` and one text, so its
findings can be reused: the memory maps a 128-bit BLAKE2b digest of the text to the findings (frozen
:class:`~leanllm_otel.processing.detection.findings.Finding` tuples). Holding digests, not texts, keeps no user
content alive past its span and bounds the memory by the number of entries alone.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Final

from leanllm_otel.processing.detection.findings import Finding

# Digesting costs ~1 ms per MB where a scan costs 10-300 ms per MB. Texts shorter than this ("ok", "thanks") are
# rescanned in a few microseconds and would only push useful entries out.
_MIN_CHARS: Final = 16
MAX_ENTRIES: Final = 4096


class ScanMemo:
    """A bounded, thread-safe map from a text's digest to its findings; the oldest entry goes first.

    Reads take no lock (one ``dict.get``, atomic under the GIL); writes do, so eviction never races another
    writer. First-in-first-out rather than least-recently-used: a text in constant use (the system prompt) is
    simply scanned again once in ``max_entries`` new texts.
    """

    __slots__ = ("_entries", "_lock", "_max_entries")

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: dict[bytes, tuple[Finding, ...]] = {}
        self._lock = threading.Lock()
        self._max_entries = max_entries

    @staticmethod
    def key(text: str) -> bytes | None:
        """The digest ``text`` (sanitized: no lone surrogates) is remembered under, or None when it is too short
        to be worth remembering."""
        if len(text) < _MIN_CHARS:
            return None
        return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()

    def get(self, key: bytes) -> tuple[Finding, ...] | None:
        """The findings remembered under ``key``, or None."""
        return self._entries.get(key)

    def put(self, key: bytes, findings: tuple[Finding, ...]) -> None:
        """Remember ``findings`` under ``key``, forgetting the oldest entries beyond the bound."""
        with self._lock:
            entries = self._entries
            entries[key] = findings
            while len(entries) > self._max_entries:
                del entries[next(iter(entries))]

    def __len__(self) -> int:
        return len(self._entries)
