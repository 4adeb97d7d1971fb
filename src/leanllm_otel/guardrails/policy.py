"""``EnforcementPolicy``: what an opt-in guard blocks, and how a call finds the policy in force.

Resolution per call: ``metadata={"leanllm_enforcement": ...}`` on the LiteLLM call > the innermost
:func:`use_enforcement` block > the process default (``LEANLLM_ENFORCEMENT``: a preset name or a JSON object).
A policy is off by default; with no guard installed the hot path pays one ``is None`` check.

>>> parse_policy('{"block_secrets_in_prompt": true, "block_injection_at": "high"}').block_injection_at
<Severity.HIGH: 3>
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from typing import Any

from leanllm_otel.processing.detectors import Severity

__all__ = [
    "METADATA_KEY",
    "PRESETS",
    "EnforcementPolicy",
    "current_enforcement",
    "parse_policy",
    "parse_severity",
    "resolve_policy",
    "use_enforcement",
]

METADATA_KEY = "leanllm_enforcement"


def parse_severity(value: object) -> Severity:
    """``Severity`` from a member, its name (any case) or its number."""
    if isinstance(value, Severity):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Severity(value)
    if isinstance(value, str):
        try:
            return Severity[value.strip().upper()]
        except KeyError:
            pass
    raise ValueError(f"expected a severity (low, medium, high, critical), got {value!r}")


@dataclass(frozen=True, slots=True)
class EnforcementPolicy:
    """What to block. Every check is off unless set.

    - ``block_secrets_in_prompt``: a secret (API key, private key, password, ...) anywhere in the request.
    - ``block_pii_in_prompt``: PII of at least ``block_pii_at`` severity in the request.
    - ``block_injection_at``: prompt-injection findings at or above this severity in non-system messages.
    - ``stop_stream_on_secret``: close a stream at the chunk that completes a secret in the output.
    - ``scan_window_chars``: how far back the stream check looks (a secret split across chunks is found as long
      as it is shorter than this).
    """

    block_secrets_in_prompt: bool = False
    block_pii_in_prompt: bool = False
    block_pii_at: Severity = Severity.HIGH
    block_injection_at: Severity | None = None
    stop_stream_on_secret: bool = False
    scan_window_chars: int = 512

    def __post_init__(self) -> None:
        if self.scan_window_chars < 16:
            raise ValueError("scan_window_chars must be >= 16")

    @property
    def checks_prompt(self) -> bool:
        return self.block_secrets_in_prompt or self.block_pii_in_prompt or self.block_injection_at is not None

    @property
    def checks_stream(self) -> bool:
        return self.stop_stream_on_secret

    @property
    def enabled(self) -> bool:
        return self.checks_prompt or self.checks_stream

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> EnforcementPolicy:
        """From a JSON-like mapping; ``"preset"`` names a base that the other keys override."""
        values = dict(values)
        base = PRESETS[_preset_name(values.pop("preset"))] if "preset" in values else cls()
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown enforcement setting(s) {sorted(unknown)}; known: {sorted(known)}")
        for key in ("block_pii_at", "block_injection_at"):
            if values.get(key) is not None:
                values[key] = parse_severity(values[key])
        return replace(base, **values)


PRESETS: Mapping[str, EnforcementPolicy] = {
    "off": EnforcementPolicy(),
    # Stop what is never legitimate: credentials leaving the process, overt jailbreaks.
    "standard": EnforcementPolicy(
        block_secrets_in_prompt=True, block_injection_at=Severity.CRITICAL, stop_stream_on_secret=True
    ),
    "strict": EnforcementPolicy(
        block_secrets_in_prompt=True,
        block_pii_in_prompt=True,
        block_pii_at=Severity.HIGH,
        block_injection_at=Severity.HIGH,
        stop_stream_on_secret=True,
    ),
}


def _preset_name(name: object) -> str:
    key = str(name).strip().lower()
    if key not in PRESETS:
        raise ValueError(f"unknown enforcement preset {name!r}; expected one of {sorted(PRESETS)}")
    return key


def parse_policy(value: object) -> EnforcementPolicy | None:
    """A policy from a preset name, a JSON object (text or mapping) or a policy; None/""/"off" mean none."""
    if value is None or isinstance(value, EnforcementPolicy):
        return value if value is None or value.enabled else None
    if isinstance(value, Mapping):
        policy = EnforcementPolicy.from_mapping(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.startswith("{"):
            try:
                loaded = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"LEANLLM_ENFORCEMENT is not valid JSON ({exc.msg})") from None
            policy = EnforcementPolicy.from_mapping(loaded)
        else:
            policy = PRESETS[_preset_name(text)]
    else:
        raise ValueError(f"expected a preset name, a JSON object or an EnforcementPolicy, got {type(value).__name__}")
    return policy if policy.enabled else None


_CONTEXT: ContextVar[EnforcementPolicy | None] = ContextVar("leanllm_enforcement", default=None)
_OFF = EnforcementPolicy()


@contextmanager
def use_enforcement(policy: EnforcementPolicy | str | Mapping[str, Any] | None) -> Iterator[None]:
    """Enforce ``policy`` for the LLM calls made inside the block (``None`` or ``"off"`` switches it off)."""
    parsed = parse_policy(policy)
    token = _CONTEXT.set(parsed if parsed is not None else _OFF)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def current_enforcement() -> EnforcementPolicy | None:
    """The policy a ``use_enforcement`` block put in force here (``EnforcementPolicy()`` when switched off)."""
    return _CONTEXT.get()


def resolve_policy(kwargs: Mapping[str, Any], default: EnforcementPolicy | None) -> EnforcementPolicy | None:
    """Per call (``metadata["leanllm_enforcement"]``) > context > ``default``; None when nothing is enforced."""
    metadata = kwargs.get("metadata")
    if isinstance(metadata, Mapping) and METADATA_KEY in metadata:
        return parse_policy(metadata[METADATA_KEY])
    ambient = _CONTEXT.get()
    if ambient is not None:
        return ambient if ambient.enabled else None
    return default
