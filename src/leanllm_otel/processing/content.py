"""PLACEHOLDER — replaced by the content/redaction implementation (issue 4)."""

from __future__ import annotations

import json
from typing import Any

from leanllm_otel import semconv as sc
from leanllm_otel.processing.record import CallRecord
from leanllm_otel.redaction_mode import RedactionMode
from leanllm_otel.settings import TelemetrySettings


class ContentRenderer:
    def __init__(self, settings: TelemetrySettings, hash_key: bytes | None = None) -> None:
        self.settings = settings
        self.hash_key = hash_key

    def render(self, record: CallRecord) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if record.error_message is not None and record.mode is RedactionMode.FULL:
            out[sc.LEANLLM_ERROR_MESSAGE] = record.error_message
        if record.capture and record.mode is RedactionMode.FULL and record.messages is not None:
            out[sc.GEN_AI_INPUT_MESSAGES] = json.dumps(record.messages, default=str)
        return out
