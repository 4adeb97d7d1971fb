"""``litellm_compat``: the one module that knows LiteLLM's internals; the version warning; graceful degradation."""

from __future__ import annotations

import logging
from typing import Any

import litellm
import pytest

from leanllm_otel import semconv as sc
from leanllm_otel.instrumentation import litellm_compat
from leanllm_otel.instrumentation.instrumentor import MODULE_FUNCTIONS

MESSAGES = [{"role": "user", "content": "hello"}]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "tested range" in r.getMessage()]


@pytest.mark.parametrize("version", ["1.79.3", "2.0.0", "not-a-version"])
def test_outside_the_tested_range_warns_once_naming_version_and_range(
    version: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="leanllm_otel"):
        assert litellm_compat.check_version(version) is False
    (message,) = _warnings(caplog)
    low, high = litellm_compat.TESTED_RANGE
    assert str(version) in message and low in message and high in message


@pytest.mark.parametrize("version", [*litellm_compat.TESTED_RANGE, "1.100.5"])
def test_inside_the_tested_range_is_quiet(version: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="leanllm_otel"):
        assert litellm_compat.check_version(version) is True
    assert _warnings(caplog) == []


def test_the_installed_litellm_is_a_tested_one(caplog: pytest.LogCaptureFixture, make_instrumented: Any) -> None:
    """Every cell of the version matrix runs a LiteLLM inside TESTED_RANGE: instrument() says nothing."""
    assert litellm_compat.is_tested(litellm_compat.installed_version())
    with caplog.at_level(logging.WARNING, logger="leanllm_otel"):
        make_instrumented()
    assert _warnings(caplog) == []


def test_an_untested_litellm_warns_at_instrument_and_still_traces(
    make_instrumented: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(litellm_compat, "installed_version", lambda: "9.0.0")
    with caplog.at_level(logging.WARNING, logger="leanllm_otel"):
        inst = make_instrumented()
    assert len(_warnings(caplog)) == 1 and "9.0.0" in _warnings(caplog)[0]
    litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="hi")
    assert inst.one_llm_span().attributes[sc.GEN_AI_OPERATION_NAME] == "chat"


def _client(original_function: Any) -> Any:
    """The shape of LiteLLM's ``@client`` decorator: a wrapper closing over ``original_function``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return original_function(*args, **kwargs)

    return wrapper


def _original(*args: Any, **kwargs: Any) -> str:
    return "original"


def test_client_cell_is_found_directly_and_behind_a_dispatch_function() -> None:
    decorated = _client(_original)
    cell = litellm_compat.client_cell(decorated)
    assert cell is not None and cell.cell_contents is _original

    def dispatch(*args: Any, **kwargs: Any) -> Any:  # LiteLLM 1.108's chat_completions.dispatch shape
        return decorated(*args, **kwargs)

    dispatch.__wrapped__ = decorated  # type: ignore[attr-defined]
    cell = litellm_compat.client_cell(dispatch)
    assert cell is not None and cell.cell_contents is _original
    assert litellm_compat.client_cell(_original) is None  # no @client wrapper: nothing to repoint


@pytest.mark.parametrize("name", ["completion", "acompletion", "embedding", "responses", "image_generation",
                                  "transcription", "speech", "rerank"])
def test_the_installed_litellm_has_a_client_cell_for(name: str) -> None:
    """What makes ``from litellm import completion`` before ``instrument()`` traced, on this LiteLLM."""
    cell = litellm_compat.client_cell(getattr(litellm, name))
    assert cell is not None and callable(cell.cell_contents)


def test_missing_entry_points_are_skipped(make_instrumented: Any, monkeypatch: pytest.MonkeyPatch,
                                          openai_server: Any) -> None:
    """An older or newer LiteLLM without some entry points: the others are still traced."""
    for spec in MODULE_FUNCTIONS:
        if spec.attribute not in ("completion", "acompletion"):
            monkeypatch.delattr(litellm, spec.attribute, raising=False)
    monkeypatch.setattr(litellm_compat, "anthropic_messages", lambda: None)
    inst = make_instrumented()
    litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, api_base=openai_server.base_url,
                       api_key="sk-test")
    assert inst.one_llm_span().attributes[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    inst.close()
    assert not hasattr(litellm, "rerank")  # nothing was added where LiteLLM has nothing


def test_hidden_params_of_anything() -> None:
    class Response:
        _hidden_params = {"response_cost": 0.5}

    assert litellm_compat.hidden_params(Response())["response_cost"] == 0.5
    assert litellm_compat.hidden_params({"content": []}) == {}
    assert litellm_compat.hidden_params(None) == {}


def test_an_ended_sdk_spans_attributes_are_read_from_its_own_dict() -> None:
    # otel_compat.span_attributes: the export path's mapping reads BoundedAttributes' dict, no copy and no per-key
    # method call; when an SDK release moves it, this fails (the fallback, the public view, still maps correctly).
    from opentelemetry.sdk.trace import TracerProvider

    from leanllm_otel import otel_compat

    span = TracerProvider().get_tracer("t").start_span("s", attributes={sc.GEN_AI_REQUEST_MODEL: "m", "n": 1})
    span.set_attribute(sc.SERVER_PORT, 8080)
    span.end()
    view = otel_compat.span_attributes(span)  # type: ignore[arg-type]
    assert type(view) is dict
    assert view == dict(span.attributes or {}) == {sc.GEN_AI_REQUEST_MODEL: "m", "n": 1, sc.SERVER_PORT: 8080}
