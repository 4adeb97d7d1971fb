"""The four forms content may leave the process in."""

from __future__ import annotations

from enum import Enum


class RedactionMode(str, Enum):
    """How captured content is exported: nothing, keyed digests, PII/secret-masked text, or verbatim."""

    METADATA = "metadata"
    METADATA_ONLY = "metadata"  # LeanLLM's historical name; an alias of METADATA
    HASHED = "hashed"
    REDACTED = "redacted"
    FULL = "full"

    @classmethod
    def parse(cls, value: RedactionMode | str) -> RedactionMode:
        """Accept an enum member or its value/name in any case; a clear ValueError otherwise."""
        if isinstance(value, RedactionMode):
            return value
        text = str(value).strip().lower()
        if text == "metadata_only":
            return cls.METADATA
        try:
            return cls(text)
        except ValueError:
            allowed = ", ".join(m.value for m in (cls.METADATA, cls.HASHED, cls.REDACTED, cls.FULL))
            raise ValueError(f"redaction_mode: expected one of {allowed}, got {value!r}") from None
