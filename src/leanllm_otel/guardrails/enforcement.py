"""Pre-call checks: the request's text against an :class:`EnforcementPolicy`, on the caller's thread.

Runs only for calls whose policy checks the prompt. Secrets and PII are looked for in every message (a key pasted
into a system prompt leaves the process just the same); injection only in non-system messages, which is where
untrusted text arrives.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from leanllm_otel.access import get_field
from leanllm_otel.guardrails.errors import LeanLLMPolicyViolation
from leanllm_otel.guardrails.policy import EnforcementPolicy
from leanllm_otel.processing.detectors import INJECTION, PII, SECRET, Detector

__all__ = ["check_prompt", "request_texts"]

_SYSTEM_ROLES = frozenset({"system", "developer"})


def _texts_of(content: Any) -> Iterator[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, Mapping):
        for key in ("text", "content", "input_text", "arguments"):
            value = content.get(key)
            if isinstance(value, str):
                yield value
            elif isinstance(value, list):
                yield from _texts_of(value)
    elif isinstance(content, (list, tuple)):
        for part in content:
            yield from _texts_of(part)


def request_texts(kwargs: Mapping[str, Any]) -> Iterator[tuple[bool, str]]:
    """``(is_system, text)`` for every piece of text the request sends (messages, prompt, input, instructions)."""
    messages = kwargs.get("messages")
    if isinstance(messages, (list, tuple)):
        for message in messages:
            if isinstance(message, Mapping):
                role = str(message.get("role") or "")
                content: Any = message.get("content")
                tool_calls = message.get("tool_calls")
            else:  # pydantic Message objects
                role = str(getattr(message, "role", "") or "")
                content = getattr(message, "content", None)
                tool_calls = getattr(message, "tool_calls", None)
            system = role in _SYSTEM_ROLES
            for text in _texts_of(content):
                yield system, text
            if isinstance(tool_calls, list):
                for call in tool_calls:
                    function = get_field(call, "function")
                    args = get_field(function, "arguments")
                    if isinstance(args, str):
                        yield system, args
    for key in ("prompt", "input"):
        for text in _texts_of(kwargs.get(key)):
            yield False, text
    for key in ("instructions", "system"):
        for text in _texts_of(kwargs.get(key)):
            yield True, text


def check_prompt(
    policy: EnforcementPolicy, detector: Detector, kwargs: Mapping[str, Any]
) -> LeanLLMPolicyViolation | None:
    """The violation this request commits under ``policy``, or None. Never includes matched text."""
    secrets: set[str] = set()
    pii: set[str] = set()
    injections: set[str] = set()
    for is_system, text in request_texts(kwargs):
        if not text:
            continue
        for finding in detector.scan(text):
            if finding.category == SECRET and policy.block_secrets_in_prompt:
                secrets.add(finding.type)
            elif finding.category == PII and policy.block_pii_in_prompt and finding.severity >= policy.block_pii_at:
                pii.add(finding.type)
            elif (
                finding.category == INJECTION
                and not is_system
                and policy.block_injection_at is not None
                and finding.severity >= policy.block_injection_at
            ):
                injections.add(finding.type)
    if secrets:
        return LeanLLMPolicyViolation("secret_in_prompt", secrets, "prompt")
    if injections:
        return LeanLLMPolicyViolation("prompt_injection", injections, "prompt")
    if pii:
        return LeanLLMPolicyViolation("pii_in_prompt", pii, "prompt")
    return None
