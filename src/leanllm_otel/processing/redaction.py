"""The four redaction modes applied to each piece of content, on the export thread.

- ``full``: verbatim (URLs lose only embedded ``user:password@`` credentials);
- ``redacted``: PII and secrets replaced by typed markers (``[PII:EMAIL]``, ``[SECRET:AWS_KEY]``) with
  :meth:`Detector.redact`, before any JSON encoding, so the JSON stays valid; URLs also lose their query string
  and fragment (signed URLs carry tokens there);
- ``hashed``: every text becomes ``"hmac-sha256:<hex>"``, an HMAC-SHA256 keyed with ``LEANLLM_HASH_KEY`` (never an
  unsalted hash: a dictionary of likely prompts cannot reverse it without the key);
- ``metadata``: nothing leaves; only sizes, counts and findings.

:class:`ModePolicy` is the ``parts.PartPolicy`` the part conversion calls for every text; it also counts
characters and collects detector findings as it goes, so each text is scanned once (in ``redacted`` mode the
redaction scan *is* the findings scan).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final

from leanllm_otel.processing.capping import dumps
from leanllm_otel.processing.detectors import (
    INJECTION,
    Detector,
    DetectorConfig,
    Finding,
    default_detector,
    marker_for,
    sanitize,
)
from leanllm_otel.redaction_mode import RedactionMode
from leanllm_otel.sensitive import REDACTED, merge, scrub, secret_spans, strip_url
from leanllm_otel.settings import TelemetrySettings

logger = logging.getLogger(__name__)

DIGEST_PREFIX: Final = "hmac-sha256:"
_REDACT_MARGIN: Final = 4096

# One random key per process, used only when no LEANLLM_HASH_KEY was given: digests then match within this
# process but not across restarts or hosts, which the warning says.
_PROCESS_KEY: Final = os.urandom(32)
_warned = False
_warn_lock = threading.Lock()


def fallback_hash_key() -> bytes:
    """The per-process random key; logs one warning per process the first time it is used."""
    global _warned
    if not _warned:
        with _warn_lock:
            if not _warned:
                _warned = True
                logger.warning(
                    "leanllm-otel: redaction mode 'hashed' without LEANLLM_HASH_KEY: content digests use a random "
                    "per-process key, so they cannot be compared across processes or restarts. Set "
                    "LEANLLM_HASH_KEY (or pass hash_key) to a stable secret."
                )
    return _PROCESS_KEY


def digest(key: bytes, text: str) -> str:
    """``"hmac-sha256:<64 hex>"`` of ``text`` (UTF-8) under ``key``."""
    return DIGEST_PREFIX + hmac.digest(key, text.encode("utf-8", "surrogatepass"), "sha256").hex()


def detector_for(settings: TelemetrySettings) -> Detector:
    """The detector for these settings (their extra patterns and allowlist); the shared default when neither is set."""
    patterns = settings.detector_extra_patterns
    allowlist = settings.detector_allowlist
    if not patterns and not allowlist:
        return default_detector()
    return Detector(DetectorConfig(extra_patterns=dict(patterns), allowlist=tuple(allowlist)))


class ModePolicy:
    """Applies one redaction mode to each text; counts characters; collects findings when ``scan`` is on.

    ``mode`` is the form content is rendered in (``metadata`` renders empty strings: the caller exports only the
    counters). ``detector`` is required when ``scan`` is on or the mode is ``redacted``; ``key`` when ``hashed``.
    """

    __slots__ = ("_detector", "_key", "chars", "findings", "keeps_structure", "mode", "scan")

    def __init__(
        self,
        mode: RedactionMode,
        *,
        scan: bool,
        detector: Detector | None = None,
        key: bytes | None = None,
    ) -> None:
        if (scan or mode is RedactionMode.REDACTED) and detector is None:
            raise ValueError("a detector is needed to scan or redact")
        if mode is RedactionMode.HASHED and key is None:
            raise ValueError("the hashed mode needs a key")
        self.mode = mode
        self.scan = scan
        self._detector = detector
        self._key = key
        self.chars = 0
        self.findings: list[Finding] = []
        self.keeps_structure = mode in (RedactionMode.FULL, RedactionMode.REDACTED)

    def take_chars(self) -> int:
        """Characters counted since the last call (input, then output)."""
        chars, self.chars = self.chars, 0
        return chars

    def text(self, value: str, content: bool = True) -> str:
        """``value`` in the mode's form; counted and scanned when it is conversation ``content``."""
        if content:
            self.chars += len(value)
        if self.mode is RedactionMode.REDACTED:
            return self._redact_leaf(value, content)
        if content and self.scan:
            self._scan_leaf(value)
        shown: str = self._unredacted(value, value)
        return shown

    def data(self, value: Any, content: bool = True) -> Any:
        """A structured value (tool arguments, tool result, JSON schema), counted by its JSON text.

        When it is (or its text parses as) a JSON object or array, the detectors see the decoded strings, keys
        included, never the JSON text: in ``"Customer data:\\n4111 1111 1111 1111"`` the card sits after an escape,
        where no word boundary holds. ``full`` / ``redacted`` return the structure (redacted leaf by leaf),
        ``hashed`` one digest of the text, ``metadata`` nothing. Anything else is text (:meth:`text`), scanned with
        escape-aware boundaries.
        """
        text = value if isinstance(value, str) else dumps(value)
        structure = _json_structure(text)
        if structure is None:
            return self.text(text, content)
        if content:
            self.chars += len(text)
        if self.mode is RedactionMode.REDACTED:
            return _walk(structure, lambda leaf: self._redact_leaf(leaf, content))
        if content and self.scan:
            _walk(structure, self._scan_leaf)
        return self._unredacted(structure, text)

    def _unredacted(self, value: Any, text: str) -> Any:
        """What the modes that do not redact export: ``full`` the value, ``hashed`` the digest of its text,
        ``metadata`` nothing."""
        if self.mode is RedactionMode.FULL:
            return value
        if self.mode is RedactionMode.HASHED:
            assert self._key is not None
            return digest(self._key, text)
        return ""

    def _redact_leaf(self, leaf: str, content: bool) -> str:
        assert self._detector is not None
        redacted, findings = self._detector.redact(leaf)
        if content and self.scan:
            self.findings.extend(findings)
        return redacted

    def _scan_leaf(self, leaf: str) -> str:
        assert self._detector is not None
        self.findings.extend(self._detector.scan(leaf))
        return leaf

    def uri(self, value: str) -> str:
        """A non-``data:`` URL: kept in ``full``; query-less and redacted in ``redacted``; digested in ``hashed``."""
        mode = self.mode
        if mode is RedactionMode.FULL:
            return strip_url(value, keep_query=True)
        if mode is RedactionMode.REDACTED:
            assert self._detector is not None
            return self._detector.redact(strip_url(value, keep_query=False))[0]
        if mode is RedactionMode.HASHED:
            assert self._key is not None
            return digest(self._key, value)
        return ""


# Deeper than this, a value is scanned as one JSON text (with escape-aware boundaries) instead of walked.
_MAX_WALK_DEPTH: Final = 128


def _json_structure(text: str) -> Any:
    """``text`` parsed when it is a JSON object or array of walkable depth, else None."""
    stripped = text.lstrip()
    if stripped[:1] not in ("{", "["):
        return None
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(parsed, (dict, list)) or _deeper_than(parsed, _MAX_WALK_DEPTH):
        return None
    return parsed


def _deeper_than(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth >= limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _walk(value: Any, leaf: Callable[[str], str]) -> Any:
    """``value`` (decoded JSON) with every string, object keys included, replaced by ``leaf(string)``."""
    if isinstance(value, str):
        return leaf(value)
    if isinstance(value, dict):
        return {leaf(key): _walk(item, leaf) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, leaf) for item in value]
    return value


def render_error_message(
    message: str,
    mode: RedactionMode,
    *,
    capture: bool,
    cap: int,
    detector: Detector | None,
    key: bytes | None,
    credentials: Sequence[str] = (),
) -> str | None:
    """The exportable form of an error message, or None when the mode exports none.

    Error messages often echo the request (a provider quoting the prompt, a gateway printing the URL and headers
    it got, a validation error printing a value), so they follow the content mode: ``full`` verbatim,
    ``redacted`` through the detector, ``hashed`` as a digest (which still groups identical errors), ``metadata``
    omitted (``error.type`` and ``leanllm.error.kind`` remain). A ``full`` mode whose content capture is off (no
    content was asked for) is treated as ``redacted``. In every mode the call's ``credentials`` (each spelling)
    and the user-info and query string of any URL are cut out first.

    The result is at most ``cap`` characters, and never holds a fragment the detectors did not see whole: a
    message up to ``2 * cap + 4096`` characters is scanned whole; of a longer one only that head is scanned and
    nothing past its last 4096 characters is exported (a secret straddling the scan's end sits in that margin).
    """
    if mode is RedactionMode.METADATA:
        return None
    if mode is RedactionMode.HASHED:
        if key is None:
            raise ValueError("the hashed mode needs a key")
        return digest(key, scrub(message, credentials))
    redacting = mode is RedactionMode.REDACTED or not capture
    if redacting and detector is None:
        raise ValueError("a detector is needed to redact")
    bound = 2 * cap + _REDACT_MARGIN
    whole = len(message) <= bound
    window = sanitize(message if whole else message[:bound])
    spans = [(start, end, REDACTED) for start, end in merge(secret_spans(window, credentials))]
    if redacting:
        assert detector is not None
        spans.extend((f.start, f.end, marker_for(f)) for f in detector.scan(window) if f.category != INJECTION)
    return splice(window, spans, safe_end=len(window) if whole else len(window) - _REDACT_MARGIN, cap=cap)


_TRUNCATED: Final = "...[truncated]"


def splice(text: str, spans: Sequence[tuple[int, int, str]], *, safe_end: int, cap: int) -> str:
    """``text[:safe_end]`` with each span replaced by its marker (overlapping spans become one, the first marker),
    in at most ``cap`` characters, ending with ``...[truncated]`` when anything was left out.

    A span that starts before ``safe_end`` is replaced whole even when it reaches past it, and a cut never falls
    inside a marker: only text the detectors saw whole, and judged clean, is ever cut.
    """
    merged: list[tuple[int, int, str]] = []
    for start, end, marker in sorted(spans, key=lambda span: span[0]):
        if merged and start < merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end, merged[-1][2])
        else:
            merged.append((start, end, marker))
    pieces: list[tuple[str, bool]] = []  # (text, is a marker)
    pos = 0
    for start, end, marker in merged:
        if start >= safe_end:
            break
        if start > pos:
            pieces.append((text[pos:start], False))
        pieces.append((marker, True))
        pos = max(pos, end)
    if pos < safe_end:
        pieces.append((text[pos:safe_end], False))
    if safe_end >= len(text) and sum(len(piece) for piece, _ in pieces) <= cap:
        return "".join(piece for piece, _ in pieces)
    budget = max(0, cap - len(_TRUNCATED))
    out: list[str] = []
    size = 0
    for piece, is_marker in pieces:
        if size + len(piece) > budget:
            if not is_marker:
                out.append(piece[: budget - size])
            break
        out.append(piece)
        size += len(piece)
    return "".join(out) + _TRUNCATED
