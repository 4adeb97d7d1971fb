"""Ambient context on spans: ``use_context``, ``trace``, precedence, threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import litellm
import pytest

from leanllm_otel import (
    CallOptions,
    LeanLLMContext,
    current_context,
    set_global_context,
    trace,
    use_call_options,
    use_context,
)
from leanllm_otel import (
    semconv as sc,
)

MESSAGES = [{"role": "user", "content": "hi"}]


def _call(content: str = "ok") -> Any:
    return litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response=content)


async def _acall(content: str = "ok") -> Any:
    return await litellm.acompletion(model="gpt-4o-mini", messages=MESSAGES, mock_response=content)


def _by_content(inst: Any) -> list[dict[str, Any]]:
    return [dict(s.attributes) for s in sorted(inst.llm_spans(), key=lambda s: s.start_time)]


@pytest.fixture(autouse=True)
def _no_global_context() -> Any:
    yield
    set_global_context(None)


def test_use_context_fields_reach_the_span(instrumented: Any) -> None:
    with use_context(user_id="u-1", session_id="s-1", feature="search", environment="staging",
                     labels={"team": "a"}, custom_tags={"tier": "gold"}, correlation_id="c-1"):
        _call()
    attrs = dict(instrumented.one_llm_span().attributes)
    assert attrs[sc.LEANLLM_USER_ID] == "u-1"
    assert attrs[sc.LEANLLM_SESSION_ID] == "s-1"
    assert attrs[sc.LEANLLM_FEATURE] == "search"
    assert attrs[sc.LEANLLM_ENVIRONMENT] == "staging"
    assert attrs[sc.LEANLLM_LABEL_PREFIX + "team"] == "a"
    assert attrs[sc.LEANLLM_TAG_PREFIX + "tier"] == "gold"
    assert attrs[sc.LEANLLM_CORRELATION_ID] == "c-1"
    assert attrs[sc.GEN_AI_CONVERSATION_ID] == "c-1"


def test_context_ends_with_its_block(instrumented: Any) -> None:
    with use_context(user_id="inside"):
        _call()
    _call()
    inside, outside = _by_content(instrumented)
    assert inside[sc.LEANLLM_USER_ID] == "inside"
    assert sc.LEANLLM_USER_ID not in outside
    assert current_context() is None


def test_nested_contexts_merge_inner_wins(instrumented: Any) -> None:
    with use_context(user_id="outer", feature="f-outer", labels={"a": "1", "b": "1"}), use_context(
        feature="f-inner", labels={"b": "2"}
    ):
        _call()
    attrs = dict(instrumented.one_llm_span().attributes)
    assert attrs[sc.LEANLLM_USER_ID] == "outer"
    assert attrs[sc.LEANLLM_FEATURE] == "f-inner"
    assert attrs[sc.LEANLLM_LABEL_PREFIX + "a"] == "1"
    assert attrs[sc.LEANLLM_LABEL_PREFIX + "b"] == "2"


def test_trace_groups_calls_under_one_correlation_id(instrumented: Any) -> None:
    with trace() as first:
        _call()
        _call()
    with trace("given-id") as second:
        _call()
    ids = [a[sc.LEANLLM_CORRELATION_ID] for a in _by_content(instrumented)]
    assert ids == [first, first, "given-id"]
    assert second == "given-id"
    assert first != second


def test_precedence_per_call_over_ambient_over_config(make_instrumented: Any) -> None:
    inst = make_instrumented(environment="config-env", sampling_rate=1.0)
    _call()  # config only
    with use_context(environment="ambient-env", correlation_id="ambient-corr", labels={"k": "ambient"}):
        _call()  # ambient over config
        with use_call_options(CallOptions(correlation_id="call-corr", labels={"k": "call"},
                                          context=LeanLLMContext(environment="call-env"))):
            _call()  # per-call over ambient
    config, ambient, per_call = _by_content(inst)
    assert config[sc.LEANLLM_ENVIRONMENT] == "config-env"
    assert sc.LEANLLM_CORRELATION_ID not in config
    assert ambient[sc.LEANLLM_ENVIRONMENT] == "ambient-env"
    assert ambient[sc.LEANLLM_CORRELATION_ID] == "ambient-corr"
    assert ambient[sc.LEANLLM_LABEL_PREFIX + "k"] == "ambient"
    assert per_call[sc.LEANLLM_ENVIRONMENT] == "call-env"
    assert per_call[sc.LEANLLM_CORRELATION_ID] == "call-corr"
    assert per_call[sc.LEANLLM_LABEL_PREFIX + "k"] == "call"


def test_sampling_rate_precedence(make_instrumented: Any) -> None:
    # Failing calls: errors are always recorded, so each call's span shows the rate that was in force.
    def failing_call() -> None:
        with pytest.raises(litellm.RateLimitError):
            litellm.completion(model="gpt-4o-mini", messages=MESSAGES,
                               mock_response=litellm.RateLimitError("slow down", "openai", "gpt-4o-mini"))

    inst = make_instrumented(sampling_rate=0.25)
    failing_call()
    with use_context(sample=0.5):
        failing_call()
        with use_call_options(CallOptions(sample=0.75)):
            failing_call()
    rates = [a[sc.LEANLLM_SAMPLING_RATE] for a in sorted(
        (dict(s.attributes) for s in inst.all_llm_spans()), key=lambda a: a[sc.LEANLLM_SAMPLING_RATE])]
    assert rates == [0.25, 0.5, 0.75]


def test_global_context_is_below_use_context(instrumented: Any) -> None:
    set_global_context(LeanLLMContext(environment="global-env", user_id="global-user"))
    _call()
    with use_context(user_id="block-user"):
        _call()
    first, second = _by_content(instrumented)
    assert first[sc.LEANLLM_ENVIRONMENT] == "global-env"
    assert first[sc.LEANLLM_USER_ID] == "global-user"
    assert second[sc.LEANLLM_ENVIRONMENT] == "global-env"
    assert second[sc.LEANLLM_USER_ID] == "block-user"


def test_context_follows_copy_context_into_threads_and_not_into_plain_ones(instrumented: Any) -> None:
    with use_context(user_id="threaded"):
        ctx = contextvars.copy_context()

    def worker() -> None:
        _call()

    copied = threading.Thread(target=ctx.run, args=(worker,))
    copied.start()
    copied.join(timeout=30)
    with use_context(user_id="not-propagated"):
        plain = threading.Thread(target=worker)  # a plain thread starts with an empty context
        plain.start()
        plain.join(timeout=30)
    assert not copied.is_alive() and not plain.is_alive()
    users = sorted(a.get(sc.LEANLLM_USER_ID, "-") for a in _by_content(instrumented))
    assert users == ["-", "threaded"]


async def test_context_follows_asyncio_tasks_and_stays_isolated(instrumented: Any) -> None:
    async def job(user: str) -> None:
        with use_context(user_id=user):
            await asyncio.sleep(0)
            await _acall(user)

    with use_context(feature="parent-feature"):
        await asyncio.gather(*(job(f"user-{i}") for i in range(5)))
    spans = _by_content(instrumented)
    assert sorted(a[sc.LEANLLM_USER_ID] for a in spans) == [f"user-{i}" for i in range(5)]
    assert all(a[sc.LEANLLM_FEATURE] == "parent-feature" for a in spans)


async def test_acompletion_sees_context_set_around_it(instrumented: Any) -> None:
    with trace() as cid, use_context(labels={"where": "async"}):
        await _acall()
    attrs = dict(instrumented.one_llm_span().attributes)
    assert attrs[sc.LEANLLM_CORRELATION_ID] == cid
    assert attrs[sc.LEANLLM_LABEL_PREFIX + "where"] == "async"


def test_auto_chain_links_consecutive_calls_in_a_trace_block(make_instrumented: Any) -> None:
    inst = make_instrumented(auto_chain=True)
    with trace():
        _call()
        _call()
        _call()
    with trace():
        _call()
    spans = _by_content(inst)
    ids = [a[sc.LEANLLM_REQUEST_ID] for a in spans]
    parents = [a.get(sc.LEANLLM_PARENT_REQUEST_ID) for a in spans]
    assert parents == [None, ids[0], ids[1], None]


def test_explicit_parent_request_id_beats_auto_chain(make_instrumented: Any) -> None:
    inst = make_instrumented(auto_chain=True)
    with trace():
        _call()
        with use_call_options(CallOptions(parent_request_id="explicit")):
            _call()
    assert _by_content(inst)[1][sc.LEANLLM_PARENT_REQUEST_ID] == "explicit"


def test_call_options_apply_only_inside_their_block(instrumented: Any) -> None:
    with use_call_options(CallOptions(request_id="fixed-id")):
        _call()
    _call()
    ids = [a[sc.LEANLLM_REQUEST_ID] for a in _by_content(instrumented)]
    assert ids[0] == "fixed-id" and ids[1] != "fixed-id"
