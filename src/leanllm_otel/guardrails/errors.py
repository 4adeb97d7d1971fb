"""Exceptions a guardrail raises into the application (the only place telemetry ever raises).

Both carry what was decided and why, never the offending text: ``findings`` holds finding *types* only.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["LeanLLMBudgetExceeded", "LeanLLMGuardrailError", "LeanLLMPolicyViolation"]


class LeanLLMGuardrailError(Exception):
    """Base of every exception an opt-in guardrail raises. ``reason`` is a short machine-readable code."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class LeanLLMPolicyViolation(LeanLLMGuardrailError):
    """A request blocked before it was sent, or a stream stopped, by the :class:`EnforcementPolicy`.

    ``stage`` is ``"prompt"`` (nothing reached the provider) or ``"stream"`` (the stream was closed at the chunk
    that completed the finding; earlier chunks were already delivered). ``findings`` holds types only
    (``("AWS_KEY",)``), never matched text.
    """

    def __init__(self, reason: str, findings: Iterable[str], stage: str) -> None:
        self.findings: tuple[str, ...] = tuple(sorted(set(findings)))
        self.stage = stage
        super().__init__(f"leanllm-otel blocked the {stage}: {reason} ({', '.join(self.findings)})", reason)


class LeanLLMBudgetExceeded(LeanLLMGuardrailError):
    """A ``block`` budget was spent: raised before the request is sent."""

    def __init__(self, budget: str, key: str, spent_usd: float, limit_usd: float, window_s: float) -> None:
        self.budget = budget
        self.key = key
        self.spent_usd = spent_usd
        self.limit_usd = limit_usd
        self.window_s = window_s
        super().__init__(
            f"leanllm-otel budget {key!r} exhausted: ${spent_usd:.6f} spent of ${limit_usd:.6f} "
            f"in the last {window_s:g} s",
            "budget_exceeded",
        )
