"""What a call's span takes from its surroundings: per-call options and ambient context, the event id, token counts.

Pure helpers of ``invocation.py`` (no span, no state of their own besides the id generator).
"""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING, Any

from leanllm_otel import semconv as sc
from leanllm_otel.context import CallOptions, LeanLLMContext, chain_parent, chain_set
from leanllm_otel.processing.sampling import clamp_rate
from leanllm_otel.redaction_mode import RedactionMode

if TYPE_CHECKING:
    from leanllm_otel.instrumentation.telemetry import Telemetry


def token_counts(response: Any) -> dict[str, Any]:
    usage = getattr(response, "usage", None)
    counts: dict[str, Any] = {}
    for attribute, names in (
        (sc.GEN_AI_USAGE_INPUT_TOKENS, ("prompt_tokens", "input_tokens")),
        (sc.GEN_AI_USAGE_OUTPUT_TOKENS, ("completion_tokens", "output_tokens")),
    ):
        for name in names:
            value = getattr(usage, name, None) if usage is not None else None
            if isinstance(value, int):
                counts[attribute] = value
                break
    return counts


ID_RANDOM = random.Random()
if hasattr(os, "register_at_fork"):
    # A forked child must not repeat its parent's (or a sibling's) ids: reseed from os.urandom in every child.
    os.register_at_fork(after_in_child=ID_RANDOM.seed)


def new_event_id() -> str:
    """A random (version 4) UUID string. ``uuid.uuid4`` reads ``os.urandom``, which releases the GIL on every call;
    with LiteLLM's logging thread runnable the caller then waits for it. Event ids need uniqueness,
    not unpredictability."""
    value = (ID_RANDOM.getrandbits(128) & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC << 60) | (0x8 << 60)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def rate_and_mode(
    options: CallOptions | None, ambient: LeanLLMContext | None, default_rate: float
) -> tuple[float, RedactionMode | None]:
    rate: float | None = options.sample if options is not None else None
    if rate is None and ambient is not None:
        rate = ambient.sample
    mode = options.redaction_mode if options is not None else None
    if mode is None and ambient is not None:
        mode = ambient.redaction_mode
    return clamp_rate(default_rate if rate is None else float(rate)), mode


def context_attributes(
    attributes: dict[str, Any],
    options: CallOptions | None,
    ambient: LeanLLMContext | None,
    default_environment: str | None,
    auto_chain: bool,
) -> None:
    correlation_id = options.correlation_id if options is not None else None
    parent_request_id = options.parent_request_id if options is not None else None
    environment = default_environment
    labels: dict[str, str] = {}
    if ambient is not None:
        correlation_id = correlation_id or ambient.correlation_id
        parent_request_id = parent_request_id or ambient.parent_request_id
        environment = ambient.environment or environment
        labels.update(ambient.labels)
        for key, value in (
            (sc.LEANLLM_USER_ID, ambient.user_id),
            (sc.LEANLLM_SESSION_ID, ambient.session_id),
            (sc.LEANLLM_FEATURE, ambient.feature),
        ):
            if value is not None:
                attributes[key] = str(value)
        for tag, value in ambient.custom_tags.items():
            attributes[sc.LEANLLM_TAG_PREFIX + str(tag)] = str(value)
    if options is not None and options.labels:
        labels.update(options.labels)
    for key, value in labels.items():
        attributes[sc.LEANLLM_LABEL_PREFIX + str(key)] = str(value)
    if parent_request_id is None and auto_chain:
        parent_request_id = chain_parent()
    if correlation_id:
        attributes[sc.LEANLLM_CORRELATION_ID] = str(correlation_id)
        attributes[sc.GEN_AI_CONVERSATION_ID] = str(correlation_id)
    if parent_request_id:
        attributes[sc.LEANLLM_PARENT_REQUEST_ID] = str(parent_request_id)
    if environment:
        attributes[sc.LEANLLM_ENVIRONMENT] = str(environment)


def chain_advance(telemetry: Telemetry, event_id: str) -> None:
    if telemetry.settings.auto_chain:
        chain_set(event_id)
