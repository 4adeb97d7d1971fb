"""The few resolved settings the hot path reads, derived once from ``LeanLLMConfig``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from leanllm_otel.redaction_mode import RedactionMode


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    """What the wrappers and the processor need per call, without touching the full config."""

    sampling_rate: float = 1.0
    environment: str | None = None
    capture_content: bool = False
    explicit_redaction_mode: RedactionMode | None = None
    security_scan: bool | None = None
    auto_chain: bool = False
    auto_normalize: bool = False
    max_content_chars: int = 32768
    detector_extra_patterns: Mapping[str, str] = field(default_factory=dict)
    detector_allowlist: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: object | None) -> TelemetrySettings:
        """From a ``LeanLLMConfig`` (or ``LeanLLMConfig.from_env()`` when None)."""
        if config is None:
            from leanllm_otel.config import LeanLLMConfig

            config = LeanLLMConfig.from_env()
        mode = getattr(config, "redaction_mode", None)
        return cls(
            sampling_rate=float(getattr(config, "sampling_rate", 1.0)),
            environment=getattr(config, "environment", None),
            capture_content=bool(getattr(config, "capture_content", False)),
            explicit_redaction_mode=RedactionMode.parse(mode) if mode is not None else None,
            security_scan=getattr(config, "security_scan", None),
            auto_chain=bool(getattr(config, "auto_chain", False)),
            auto_normalize=bool(getattr(config, "auto_normalize", False)),
            max_content_chars=int(getattr(config, "max_content_chars", 32768)),
            detector_extra_patterns=dict(getattr(config, "detector_extra_patterns", None) or {}),
            detector_allowlist=tuple(getattr(config, "detector_allowlist", None) or ()),
        )

    def redaction_mode(self, per_call: RedactionMode | None) -> RedactionMode:
        """Per call > config. Content capture on with no explicit mode means ``redacted``; off means ``metadata``."""
        if per_call is not None:
            return per_call
        if self.explicit_redaction_mode is not None:
            return self.explicit_redaction_mode
        return RedactionMode.REDACTED if self.capture_content else RedactionMode.METADATA

    @property
    def scans(self) -> bool:
        """Whether kept calls are scanned for PII, secrets and injection (``leanllm.security.*``, counts only): in
        every redaction mode, content captured or not, unless ``security_scan`` is False."""
        return self.security_scan is not False

    def captures(self, per_call_mode: bool) -> bool:
        """Whether a call's content may leave as attributes (in the form its redaction mode allows)."""
        return self.capture_content or per_call_mode

    def wants_record(self, mode: RedactionMode, per_call_mode: bool) -> bool:
        """Whether a sampled-in call keeps a content snapshot (references) for the export threads."""
        return self.captures(per_call_mode) or self.auto_normalize or self.scans

    def copies_content(self, per_call_mode: bool) -> bool:
        """Whether the snapshot's containers are copied at call end (``CallRecord.seal``). Only when content leaves
        or is normalised: a scan alone reads the caller's objects by reference on the export thread, so it costs
        the caller nothing (an application editing a message afterwards changes at most the counts)."""
        return self.captures(per_call_mode) or self.auto_normalize
