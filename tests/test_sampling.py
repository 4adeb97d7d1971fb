"""Sampling in ``LeanLLMSpanProcessor``: successes sampled by rate, errors always kept, trace-coherent decisions."""

from __future__ import annotations

import math
from typing import Any

import litellm
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, TraceIdRatioBased
from opentelemetry.trace import StatusCode

from leanllm_otel import CallOptions, LeanLLMContext, LeanLLMSampler, use_call_options, use_context
from leanllm_otel import semconv as sc
from leanllm_otel.processing.sampling import clamp_rate, keeps

MESSAGES = [{"role": "user", "content": "hi"}]


def _ok() -> None:
    litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="ok")


def _fail() -> None:
    with pytest.raises(litellm.RateLimitError):
        litellm.completion(model="gpt-4o-mini", messages=MESSAGES,
                           mock_response=litellm.RateLimitError("x", llm_provider="openai", model="gpt-4o-mini"))


def _split(inst: Any) -> tuple[list[Any], list[Any]]:
    spans = inst.llm_spans()
    errors = [s for s in spans if s.status.status_code is StatusCode.ERROR]
    return errors, [s for s in spans if s.status.status_code is not StatusCode.ERROR]


def test_rate_zero_keeps_every_error_and_no_success(make_instrumented: Any) -> None:
    inst = make_instrumented(sampling_rate=0.0)
    for _ in range(20):
        _ok()
        _fail()
    errors, successes = _split(inst)
    assert len(errors) == 20
    assert successes == []
    assert all(s.attributes[sc.LEANLLM_SAMPLING_RATE] == 0.0 for s in errors)
    counters = inst.processor.counters.snapshot()
    assert counters["kept_errors"] == 20
    assert counters["sampled_out"] == 20
    assert counters["kept"] == 0


async def test_rate_zero_keeps_async_errors(make_instrumented: Any) -> None:
    inst = make_instrumented(sampling_rate=0.0)
    for _ in range(5):
        await litellm.acompletion(model="gpt-4o-mini", messages=MESSAGES, mock_response="ok")
        with pytest.raises(litellm.Timeout):
            await litellm.acompletion(model="gpt-4o-mini", messages=MESSAGES,
                                      mock_response=litellm.Timeout("t", model="gpt-4o-mini", llm_provider="openai"))
    errors, successes = _split(inst)
    assert (len(errors), len(successes)) == (5, 0)


def test_rate_point_three_keeps_a_binomial_share(make_instrumented: Any) -> None:
    inst = make_instrumented(sampling_rate=0.3)
    n, p = 2000, 0.3
    for _ in range(n):
        _ok()
    kept = len(inst.llm_spans())
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(kept - n * p) < 5 * sigma, kept  # ~1e-6 chance of a false failure
    counters = inst.processor.counters.snapshot()
    assert counters["kept"] + counters["sampled_out"] == n


def test_head_sampler_dropping_everything_still_lets_errors_through(make_instrumented: Any) -> None:
    inst = make_instrumented(sampler=LeanLLMSampler(TraceIdRatioBased(0.0)))
    with inst.tracer.start_as_current_span("request handler") as handler:
        assert not handler.get_span_context().trace_flags.sampled
        for _ in range(5):
            _ok()
            _fail()
    _fail()  # no parent at all
    errors, successes = _split(inst)
    assert len(errors) == 6
    assert successes == []
    assert all(s.context.trace_flags.sampled for s in errors)  # marked sampled for every downstream exporter
    assert [s for s in inst.spans() if s.name == "request handler"] == []  # other spans: the app's decision
    assert inst.processor.counters.snapshot()["head_sampled_out"] == 5


def test_lean_sampler_keeps_the_delegates_positive_decisions(make_instrumented: Any) -> None:
    sampler = LeanLLMSampler(ALWAYS_ON)
    assert "AlwaysOnSampler" in sampler.get_description()
    inst = make_instrumented(sampler=sampler)
    with inst.tracer.start_as_current_span("handler"):
        _ok()
    assert len(inst.llm_spans()) == 1
    assert [s.name for s in inst.spans() if s.name == "handler"] == ["handler"]


def test_per_call_rate_one_under_global_zero_is_kept(make_instrumented: Any) -> None:
    inst = make_instrumented(sampling_rate=0.0)
    with use_call_options(CallOptions(sample=1.0)):
        _ok()
    _ok()
    with use_context(sample=1.0):
        _ok()
    spans = inst.llm_spans()
    assert len(spans) == 2
    assert all(s.attributes[sc.LEANLLM_SAMPLING_RATE] == 1.0 for s in spans)


def test_per_call_zero_under_global_one_is_dropped(make_instrumented: Any) -> None:
    inst = make_instrumented(sampling_rate=1.0)
    with use_call_options(CallOptions(context=LeanLLMContext(sample=0.0))):
        _ok()
    assert inst.llm_spans() == []
    assert inst.all_llm_spans() == []  # sampled out at start: no SDK span was ever made
    assert inst.processor.counters.snapshot()["sampled_out"] == 1


def test_decisions_are_trace_coherent(make_instrumented: Any) -> None:
    inst = make_instrumented(sampling_rate=0.5)
    outcomes: list[int] = []
    for _ in range(30):
        inst.clear()
        with inst.tracer.start_as_current_span("request"):
            for _ in range(4):
                _ok()
        outcomes.append(len(inst.llm_spans()))
    assert set(outcomes) == {0, 4}  # each trace all-or-nothing, and both happen (chance 2**-29 otherwise)


async def test_decisions_are_trace_coherent_async(make_instrumented: Any) -> None:
    inst = make_instrumented(sampling_rate=0.5)
    outcomes: set[int] = set()
    for _ in range(30):
        inst.clear()
        with inst.tracer.start_as_current_span("request"):
            for _ in range(3):
                await litellm.acompletion(model="gpt-4o-mini", messages=MESSAGES, mock_response="ok")
        outcomes.add(len(inst.llm_spans()))
    assert outcomes == {0, 3}


def test_log_false_produces_no_span_at_all(instrumented: Any) -> None:
    with use_call_options(CallOptions(log=False)):
        _ok()
        _fail()
    assert instrumented.unfiltered.get_finished_spans() == ()
    assert instrumented.processor.counters.snapshot() == {
        "kept": 0, "kept_errors": 0, "sampled_out": 0, "head_sampled_out": 0,
    }


def test_non_llm_spans_pass_through_the_processor_untouched(make_instrumented: Any) -> None:
    inst = make_instrumented(sampling_rate=0.0)
    with inst.tracer.start_as_current_span("plain") as span:
        span.set_attribute("k", "v")
    (plain,) = inst.spans()
    assert plain.name == "plain" and plain.attributes["k"] == "v"


@given(st.integers(min_value=0, max_value=(1 << 128) - 1), st.floats(0, 1), st.floats(0, 1))
def test_a_higher_rate_keeps_a_superset(trace_id: int, a: float, b: float) -> None:
    low, high = sorted((a, b))
    if keeps(trace_id, low):
        assert keeps(trace_id, high)
    assert keeps(trace_id, 1.0)
    assert not keeps(trace_id, 0.0)


def test_clamp_rate() -> None:
    assert clamp_rate(-1.0) == 0.0
    assert clamp_rate(2.0) == 1.0
    assert clamp_rate(0.4) == 0.4


def test_sampled_out_call_that_fails_is_recorded_under_its_parent_from_its_start(make_instrumented: Any) -> None:
    inst = make_instrumented(sampling_rate=0.0)
    with inst.tracer.start_as_current_span("request") as parent:
        _ok()  # sampled out: no span at all
        _fail()  # sampled out at start, then failed: the real span is made at failure
    (error,) = inst.llm_spans()
    assert error.parent is not None and error.parent.span_id == parent.get_span_context().span_id
    assert error.context.trace_id == parent.get_span_context().trace_id
    assert error.start_time < error.end_time
    assert error.attributes[sc.LEANLLM_SAMPLED] is False
    assert error.attributes[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert error.attributes[sc.LEANLLM_ERROR_KIND] == "rate_limit"


def test_sampled_out_stream_that_breaks_is_recorded(make_instrumented: Any, openai_server: Any) -> None:
    inst = make_instrumented(sampling_rate=0.0)
    stream = litellm.completion(
        model="openai/break-3", messages=MESSAGES, api_base=openai_server.base_url, api_key="sk-test",
        stream=True, max_retries=0,
    )
    assert isinstance(stream, litellm.CustomStreamWrapper)
    with pytest.raises(Exception):  # noqa: B017 - LiteLLM's mid-stream error class varies by version
        for _ in stream:
            pass
    (error,) = inst.llm_spans()
    assert error.attributes[sc.LEANLLM_STREAM_OUTCOME] == sc.STREAM_ERROR
    assert error.attributes[sc.LEANLLM_STREAM_CHUNKS] >= 1
    assert error.status.status_code is StatusCode.ERROR


def test_end_listeners_receive_exactly_the_kept_llm_spans_with_their_decision(make_instrumented: Any) -> None:
    from leanllm_otel.processing.sampling import Keep

    inst = make_instrumented(sampling_rate=0.0)
    heard: list[tuple[Any, Keep]] = []
    inst.processor.add_end_listener(lambda span, decision: heard.append((span, decision)))
    with use_call_options(CallOptions(sample=1.0)):
        _ok()
    _ok()  # sampled out: not heard
    _fail()
    inst.tracer.start_span("not an llm call").end()
    assert [decision for _, decision in heard] == [Keep.KEPT, Keep.KEPT_ERROR]
    assert [span.attributes[sc.LEANLLM_REQUEST_ID] for span, _ in heard] == [
        span.attributes[sc.LEANLLM_REQUEST_ID] for span in inst.llm_spans()
    ]
    assert all(hasattr(span, "leanllm_record") for span, _ in heard)


def test_the_keep_decision_in_one_table() -> None:
    from leanllm_otel.processing.sampling import Keep, decide

    assert decide(failed=True, head_sampled=False, drawn=False) is Keep.KEPT_ERROR
    assert decide(failed=False, head_sampled=False, drawn=True) is Keep.HEAD_SAMPLED_OUT
    assert decide(failed=False, drawn=False) is Keep.SAMPLED_OUT
    assert decide(failed=False, drawn=True, rate=0.0) is Keep.KEPT  # the draw made at start wins
    assert decide(failed=False, trace_id=1, rate=0.5) is Keep.KEPT
    assert decide(failed=False, trace_id=(1 << 64) - 1, rate=0.5) is Keep.SAMPLED_OUT
    assert [k.kept for k in Keep] == [True, True, False, False]
