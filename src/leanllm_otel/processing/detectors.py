"""PII, secret and prompt-injection detectors on google-re2, plus the redaction primitive (the public surface).

The jobs live in :mod:`leanllm_otel.processing.detection`: ``catalog`` (what is looked for), ``engine`` (the
compiled scan and overlap resolution), ``findings`` (what a scan reports) and ``stream`` (incremental scanning).

A :class:`Finding` records a type, a category, a severity and offsets into the scanned text, never the matched
text itself, so findings can be exported as ``{type: count}`` without leaking what was found.

>>> det = default_detector()
>>> det.redact("mail bob@example.com, key AKIAIOSFODNN7EXAMPLE")[0]
'mail [PII:EMAIL], key [SECRET:AWS_KEY]'
"""

from __future__ import annotations

from leanllm_otel.processing.detection.catalog import CATEGORIES, CUSTOM, INJECTION, PII, SECRET, Severity
from leanllm_otel.processing.detection.checksums import iban_ok, luhn_ok
from leanllm_otel.processing.detection.engine import (
    INJECTION_TYPES,
    PII_TYPES,
    SECRET_TYPES,
    Detector,
    DetectorConfig,
    default_detector,
)
from leanllm_otel.processing.detection.findings import Finding, marker_for, max_severity, sanitize, summarize
from leanllm_otel.processing.detection.stream import StreamScanner

__all__ = [
    "CATEGORIES",
    "CUSTOM",
    "INJECTION",
    "INJECTION_TYPES",
    "PII",
    "PII_TYPES",
    "SECRET",
    "SECRET_TYPES",
    "Detector",
    "DetectorConfig",
    "Finding",
    "Severity",
    "StreamScanner",
    "default_detector",
    "iban_ok",
    "luhn_ok",
    "marker_for",
    "max_severity",
    "sanitize",
    "summarize",
]
