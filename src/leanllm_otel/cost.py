"""What a call cost, in USD: the one home of the cost rules.

- :func:`response_cost`: the cost LiteLLM computed for a response (``response_cost`` of its hidden params);
- :func:`price_of_usage`: LiteLLM's bundled price map applied to token counts; raises when it has no price;
- :func:`usage_cost`: a span's usage priced that way, None for a model without a price (never a guess);
- :func:`span_cost`: the cost a span recorded (``leanllm.cost.usd``), else its usage priced;
- :func:`call_cost`: a response's cost, else LiteLLM's ``completion_cost`` of it (replay's comparison).

Every figure comes from LiteLLM; nothing here keeps prices of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leanllm_otel import semconv as sc

__all__ = ["call_cost", "price_of_usage", "response_cost", "span_cost", "usage_cost"]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def response_cost(hidden: Mapping[str, Any]) -> float | None:
    """The cost LiteLLM attached to a response (or a stream), from its hidden params
    (``instrumentation.litellm_compat.hidden_params``, the one reader of LiteLLM's internals); None when none."""
    return _number(hidden.get("response_cost"))


def price_of_usage(model: str, input_tokens: int, output_tokens: int) -> float:
    """Cost in USD from LiteLLM's bundled price map; raises when LiteLLM has no price for ``model``."""
    import litellm

    prompt_cost, completion_cost = litellm.cost_per_token(
        model=model, prompt_tokens=input_tokens, completion_tokens=output_tokens
    )
    return float(prompt_cost) + float(completion_cost)


def usage_cost(attributes: Mapping[str, Any]) -> float | None:
    """The cost of a span's token usage in LiteLLM's price map; None for a model it has no price for (never a
    guess) or a span without usage."""
    input_tokens = attributes.get(sc.GEN_AI_USAGE_INPUT_TOKENS)
    output_tokens = attributes.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS)
    model = attributes.get(sc.GEN_AI_RESPONSE_MODEL) or attributes.get(sc.GEN_AI_REQUEST_MODEL)
    if not isinstance(input_tokens, int) or not isinstance(model, str):
        return None
    try:
        outputs = output_tokens if isinstance(output_tokens, int) else 0
        return price_of_usage(model, input_tokens, outputs)
    except Exception:
        return None


def span_cost(attributes: Mapping[str, Any]) -> float | None:
    """``leanllm.cost.usd``, else LiteLLM's price map on the usage (None for models it has no price for)."""
    cost = _number(attributes.get(sc.LEANLLM_COST_USD))
    return cost if cost is not None else usage_cost(attributes)


def call_cost(response: Any, hidden: Mapping[str, Any]) -> float | None:
    """The cost LiteLLM attached to ``response`` (``hidden``: its hidden params, see :func:`response_cost`), else
    LiteLLM's ``completion_cost`` of it; None when neither works."""
    cost = response_cost(hidden)
    if cost is not None:
        return cost
    try:
        import litellm

        return float(litellm.completion_cost(completion_response=response))
    except Exception:
        return None
