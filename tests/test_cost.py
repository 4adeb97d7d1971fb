"""leanllm_otel.cost: the one home of the cost rules (LiteLLM's figures only, never a guess)."""

from __future__ import annotations

from typing import Any

import litellm
import pytest

from leanllm_otel import semconv as sc
from leanllm_otel.cost import call_cost, price_of_usage, response_cost, span_cost, usage_cost
from leanllm_otel.instrumentation.litellm_compat import hidden_params

USAGE = {sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini", sc.GEN_AI_USAGE_INPUT_TOKENS: 1000, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 500}


class _Response:
    def __init__(self, hidden: Any) -> None:
        self._hidden_params = hidden


def test_usage_is_priced_by_litellms_map() -> None:
    prompt, completion = litellm.cost_per_token(model="gpt-4o-mini", prompt_tokens=1000, completion_tokens=500)
    assert usage_cost(USAGE) == pytest.approx(prompt + completion)
    assert price_of_usage("gpt-4o-mini", 1000, 500) == pytest.approx(prompt + completion)


def test_no_price_and_no_usage_give_none() -> None:
    assert usage_cost({**USAGE, sc.GEN_AI_REQUEST_MODEL: "no-such-model-anywhere"}) is None
    assert usage_cost({sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini"}) is None


def test_a_recorded_cost_wins_over_the_price_map() -> None:
    assert span_cost({**USAGE, sc.LEANLLM_COST_USD: 0.5}) == 0.5
    assert span_cost(USAGE) == usage_cost(USAGE)


def test_response_cost_reads_litellms_hidden_params_only() -> None:
    assert response_cost(hidden_params(_Response({"response_cost": 0.25}))) == 0.25
    assert response_cost(hidden_params(_Response({"response_cost": True}))) is None
    assert response_cost(hidden_params(_Response(None))) is None
    assert call_cost(_Response({"response_cost": 0.25}), {"response_cost": 0.25}) == 0.25
    assert call_cost(object(), hidden_params(object())) is None


def test_hidden_params_of_a_real_response_are_read_from_pydantics_private_dict() -> None:
    # A response's _hidden_params is a pydantic private attribute; the fast read must see the very object that
    # getattr sees (cost and provider of every call come from it), also after LiteLLM reassigns it.
    response = litellm.completion(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], mock_response="Hello"
    )
    assert "_hidden_params" in response.__pydantic_private__
    assert hidden_params(response) is response._hidden_params
    response._hidden_params = {"response_cost": 0.125, "custom_llm_provider": "openai"}
    assert hidden_params(response) == {"response_cost": 0.125, "custom_llm_provider": "openai"}
    assert response_cost(hidden_params(response)) == 0.125
    assert call_cost(response, hidden_params(response)) == 0.125
