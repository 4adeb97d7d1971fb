"""What a scan reports: :class:`Finding` (type, category, severity, offsets; never the matched text), the
text normalisation every scan starts from (:func:`sanitize`), the redaction marker and the exportable summaries."""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from leanllm_otel.processing.detection.catalog import CUSTOM, PII, SECRET, Severity

_MARKER_PREFIX: Final = {PII: "PII", SECRET: "SECRET", CUSTOM: "CUSTOM"}


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected item. ``start``/``end`` index the scanned text and serve redaction only; never export them."""

    type: str
    category: str
    severity: Severity
    start: int
    end: int


# Lone surrogates cannot be encoded to UTF-8 (which RE2 needs); each becomes U+FFFD, so the length, and
# therefore every offset, is unchanged.
def _surrogate_to_fffd(exc: UnicodeError) -> tuple[bytes, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    return "\ufffd".encode() * (exc.end - exc.start), exc.end  # the UTF-8 encoder takes only ASCII str back


_SURROGATE_HANDLER: Final = "leanllm_otel.surrogate_to_fffd"
codecs.register_error(_SURROGATE_HANDLER, _surrogate_to_fffd)


def sanitize(text: str) -> str:
    """Return ``text`` with lone surrogates replaced by U+FFFD (same length; a no-op for valid text)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", _SURROGATE_HANDLER).decode("utf-8")
    return text


def marker_for(finding: Finding) -> str:
    """The redaction marker for ``finding``: ``[PII:EMAIL]``, ``[SECRET:AWS_KEY]``, ``[CUSTOM:<NAME>]``."""
    return f"[{_MARKER_PREFIX.get(finding.category, finding.category.upper())}:{finding.type}]"


def summarize(findings: Iterable[Finding]) -> dict[str, int]:
    """Count findings by type: ``{"EMAIL": 2, "AWS_KEY": 1}`` (the exportable form; no text, no offsets)."""
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.type] = counts.get(finding.type, 0) + 1
    return counts


def max_severity(findings: Iterable[Finding]) -> Severity | None:
    """The highest severity among ``findings``, or ``None`` when there are none."""
    return max((f.severity for f in findings), default=None)
