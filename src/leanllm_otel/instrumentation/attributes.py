"""LiteLLM request and response objects -> span attributes (names only from ``semconv``).

Only whitelisted request parameters are read, so credentials (``api_key``, ``extra_headers``, ...) can never be
copied by accident. Everything here runs on the caller's thread and is kept to cheap field reads.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from leanllm_otel import semconv as sc
from leanllm_otel.access import get_field as _get
from leanllm_otel.cost import response_cost
from leanllm_otel.instrumentation import litellm_compat

# LiteLLM provider name -> gen_ai.provider.name well-known value.
_PROVIDER_NAMES: dict[str, str] = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure.ai.openai",
    "azure_text": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "anthropic": "anthropic",
    "anthropic_text": "anthropic",
    "bedrock": "aws.bedrock",
    "sagemaker": "aws.sagemaker",
    "vertex_ai": "gcp.vertex_ai",
    "vertex_ai_beta": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "mistral": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "perplexity": "perplexity",
    "watsonx": "ibm.watsonx.ai",
    "watsonx_text": "ibm.watsonx.ai",
}

# kwarg -> (attribute, expected python type(s))
_REQUEST_PARAMETERS: tuple[tuple[str, str, type | tuple[type, ...]], ...] = (
    ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE, (int, float)),
    ("top_p", sc.GEN_AI_REQUEST_TOP_P, (int, float)),
    ("top_k", sc.GEN_AI_REQUEST_TOP_K, (int, float)),
    ("max_tokens", sc.GEN_AI_REQUEST_MAX_TOKENS, int),
    ("max_completion_tokens", sc.GEN_AI_REQUEST_MAX_TOKENS, int),
    ("max_output_tokens", sc.GEN_AI_REQUEST_MAX_TOKENS, int),
    ("seed", sc.GEN_AI_REQUEST_SEED, int),
    ("frequency_penalty", sc.GEN_AI_REQUEST_FREQUENCY_PENALTY, (int, float)),
    ("presence_penalty", sc.GEN_AI_REQUEST_PRESENCE_PENALTY, (int, float)),
    ("n", sc.GEN_AI_REQUEST_CHOICE_COUNT, int),
)


def semconv_provider(litellm_provider: str | None) -> str | None:
    if not litellm_provider:
        return None
    return _PROVIDER_NAMES.get(litellm_provider, litellm_provider)


@functools.lru_cache(maxsize=1024)
def resolve_model(model: str, custom_llm_provider: str | None, api_base: str | None) -> tuple[str, str | None]:
    """(model without LiteLLM's routing prefix, LiteLLM provider) — cached, LiteLLM's own resolution."""
    try:
        return litellm_compat.resolve_provider(model, custom_llm_provider, api_base)
    except Exception:
        # Unknown to LiteLLM (the call will fail and say so); keep what the caller asked for.
        prefix, sep, rest = model.partition("/")
        return (rest, custom_llm_provider or prefix) if sep else (model, custom_llm_provider)


@functools.lru_cache(maxsize=256)
def server_of(api_base: str) -> tuple[str | None, int | None]:
    """Host and port of an api_base URL; user-info, path and query (where secrets hide) are never kept."""
    try:
        parts = urlsplit(api_base)
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80 if parts.scheme == "http" else None)
        return host, port
    except ValueError:
        return None, None


def request_attributes(operation: str, model: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes known before the call (samplers see them)."""
    api_base = kwargs.get("api_base") or kwargs.get("base_url")
    api_base = api_base if isinstance(api_base, str) else None
    custom_provider = kwargs.get("custom_llm_provider")
    resolved_model, provider = resolve_model(
        model, custom_provider if isinstance(custom_provider, str) else None, api_base
    )
    attributes: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: operation,
        sc.GEN_AI_REQUEST_MODEL: resolved_model,
    }
    provider_name = semconv_provider(provider)
    if provider_name:
        attributes[sc.GEN_AI_PROVIDER_NAME] = provider_name
    if api_base:
        host, port = server_of(api_base)
        if host:
            attributes[sc.SERVER_ADDRESS] = host
        if port:
            attributes[sc.SERVER_PORT] = port
    for name, attribute, kinds in _REQUEST_PARAMETERS:
        value = kwargs.get(name)
        if value is not None and isinstance(value, kinds) and not isinstance(value, bool):
            attributes[attribute] = value
    stop = kwargs.get("stop")
    if isinstance(stop, str):
        attributes[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = [stop]
    elif isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop):
        attributes[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = list(stop)
    encoding = kwargs.get("encoding_format")
    if isinstance(encoding, str):
        attributes[sc.GEN_AI_REQUEST_ENCODING_FORMATS] = [encoding]
    response_format = kwargs.get("response_format")
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, Mapping) else None
        json_kinds = ("json_object", "json_schema", None)
        attributes[sc.GEN_AI_OUTPUT_TYPE] = sc.OUTPUT_TYPE_JSON if kind in json_kinds else sc.OUTPUT_TYPE_TEXT
    messages = kwargs.get("messages")
    if isinstance(messages, Sequence):
        attributes[sc.LEANLLM_INPUT_MESSAGE_COUNT] = len(messages)
    return attributes


def _count(usage: Any, *names: str) -> int | None:
    """The first positive count among ``names``, else the first count (LiteLLM 1.80's image usage carries
    ``prompt_tokens=0`` beside the real ``input_tokens``)."""
    first: int | None = None
    for name in names:
        value = _get(usage, name)
        if isinstance(value, int) and not isinstance(value, bool):
            if value > 0:
                return value
            if first is None:
                first = value
    return first


def usage_attributes(usage: Any) -> dict[str, Any]:
    """Token counts from a LiteLLM/OpenAI usage object (chat, embeddings or Responses API shapes)."""
    attributes: dict[str, Any] = {}
    if usage is None:
        return attributes
    input_tokens = _count(usage, "prompt_tokens", "input_tokens")
    output_tokens = _count(usage, "completion_tokens", "output_tokens")
    total = _get(usage, "total_tokens")
    if isinstance(input_tokens, int):
        attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
    if isinstance(output_tokens, int):
        attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
    if isinstance(total, int):
        attributes[sc.LEANLLM_TOTAL_TOKENS] = total
    prompt_details = _get(usage, "prompt_tokens_details") or _get(usage, "input_tokens_details")
    cached = _get(prompt_details, "cached_tokens") if prompt_details is not None else None
    if isinstance(cached, int) and cached > 0:
        attributes[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = cached
    cache_creation = _get(usage, "cache_creation_input_tokens")
    if isinstance(cache_creation, int) and cache_creation > 0:
        attributes[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = cache_creation
    cache_read = _get(usage, "cache_read_input_tokens")
    if isinstance(cache_read, int) and cache_read > 0:
        attributes.setdefault(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, cache_read)
    completion_details = _get(usage, "completion_tokens_details") or _get(usage, "output_tokens_details")
    reasoning = _get(completion_details, "reasoning_tokens") if completion_details is not None else None
    if isinstance(reasoning, int) and reasoning > 0:
        attributes[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = reasoning
    attributes[sc.LEANLLM_USAGE_REPORTED] = bool(attributes)
    return attributes


def response_attributes(response: Any) -> dict[str, Any]:
    """End-of-call attributes from a non-streaming LiteLLM response of any operation."""
    attributes: dict[str, Any] = {}
    response_id = _get(response, "id")
    if isinstance(response_id, str):
        attributes[sc.GEN_AI_RESPONSE_ID] = response_id
    model = _get(response, "model")
    if isinstance(model, str):
        attributes[sc.GEN_AI_RESPONSE_MODEL] = model
    choices = _get(response, "choices")
    if isinstance(choices, Sequence):
        reasons = [str(r) for r in (_get(c, "finish_reason") for c in choices) if r is not None]
        if reasons:
            attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    else:
        status = _get(response, "status")  # Responses API
        if not isinstance(status, str):
            status = _get(response, "stop_reason")  # Anthropic messages
        if isinstance(status, str):
            attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] = [status]
    usage = _get(response, "usage")
    if usage is None:  # rerank: {"meta": {"tokens": {"input_tokens", "output_tokens"}}}
        usage = _get(_get(response, "meta"), "tokens")
    attributes.update(usage_attributes(usage))
    hidden = litellm_compat.hidden_params(response)
    cost = response_cost(hidden)
    if cost is not None:
        attributes[sc.LEANLLM_COST_USD] = cost
    provider = semconv_provider(hidden.get("custom_llm_provider"))
    if provider:
        attributes[sc.GEN_AI_PROVIDER_NAME] = provider
    return attributes
