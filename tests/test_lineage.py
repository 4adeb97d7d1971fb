"""Execution graphs and chains from parent_request_id and span parentage; tool-call records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from leanllm_otel import LeanLLM, LLMEvent, trace
from leanllm_otel.lineage import ExecutionGraph, tool_calls
from test_client_support import MODEL, ask, clean_env_fixture, make_client_fixture  # noqa: F401 - fixtures

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _event(event_id: str, seconds: int, **fields: Any) -> LLMEvent:
    return LLMEvent(event_id=event_id, timestamp=T0 + timedelta(seconds=seconds), model="m", **fields)


def test_graph_from_parent_request_ids_and_span_parentage() -> None:
    events = [
        _event("root", 0, trace_id="t1", span_id="s1", input_tokens=1, output_tokens=2, cost=0.1),
        _event("step1", 1, parent_request_id="root", trace_id="t1", span_id="s2", input_tokens=3, cost=0.2),
        _event("step2", 2, parent_request_id="step1", trace_id="t1", span_id="s3", status="error"),
        _event("nested", 3, trace_id="t1", span_id="s4", parent_span_id="s2"),  # span child of step1
        _event("orphan", 4, parent_request_id="not-stored"),
        _event("loner", 5),
    ]
    graph = ExecutionGraph.from_events(reversed(events))
    assert [e.event_id for e in graph.roots()] == ["root", "orphan", "loner"]
    assert [e.event_id for e in graph.chain("step2")] == ["root", "step1", "step2"]
    assert [e.event_id for e in graph.children("step1")] == ["step2", "nested"]
    assert {(x.parent, x.child, x.kind) for x in graph.edges} >= {("step1", "nested", "span"),
                                                                   ("root", "step1", "parent_request")}
    assert [e.event_id for e in graph.descendants("root")] == ["step1", "step2", "nested"]
    assert graph.missing_parents() == {"orphan": "not-stored"}
    assert graph.depth("nested") == 2
    totals = graph.totals("root")
    assert totals["calls"] == 4 and totals["errors"] == 1 and totals["input_tokens"] == 4 and totals["cost"] == 0.3
    rendered = graph.render("root").splitlines()
    assert rendered[0].startswith("root") and rendered[2].startswith("    ERROR step2")
    assert graph.to_dict()["missing_parents"] == {"orphan": "not-stored"}


def test_cycles_are_broken() -> None:
    graph = ExecutionGraph.from_events([_event("a", 0, parent_request_id="b"), _event("b", 1, parent_request_id="a")])
    assert len(graph.edges) == 1
    assert len(graph.roots()) == 1
    assert len(graph.chain("a")) <= 2 and len(graph.chain("b")) <= 2


def test_tool_call_records_are_matched_with_results() -> None:
    call = _event("call", 0, output_messages=[{"role": "assistant", "parts": [
        {"type": "tool_call", "id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}}]}],
        tool_calls=[{"type": "tool_call", "id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}}])
    answer = _event("answer", 1, input_messages=[
        {"role": "user", "parts": [{"type": "text", "content": "weather?"}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "sunny"}]}])
    records = tool_calls([answer, call])
    assert len(records) == 1
    record = records[0]
    assert (record.event_id, record.id, record.name, record.arguments) == ("call", "c1", "get_weather",
                                                                          {"city": "Paris"})
    assert (record.result, record.result_event_id) == ("sunny", "answer")
    assert tool_calls(call)[0].result is None


def test_graph_of_stored_client_events(make_client: Callable[..., LeanLLM], openai_server: Any) -> None:
    client = make_client(auto_chain=True, capture_content=True, redaction_mode="full")
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    with trace() as cid:
        ask(client, openai_server, "plan")
        client.chat("openai/tools", [{"role": "user", "content": "use a tool"}], api_base=openai_server.base_url,
                    tools=tools)
        ask(client, openai_server, "summarize")
    graph = ExecutionGraph.from_events(client.list_events(correlation_id=cid))
    assert len(graph) == 3 and len(graph.roots()) == 1
    chain = graph.chain(client.last_event.event_id)  # type: ignore[union-attr]
    assert [e.model for e in chain] == ["gpt-4o-mini", "tools", "gpt-4o-mini"]
    records = tool_calls(list(graph.events.values()))
    assert len(records) == 1 and records[0].name == "lookup" and records[0].event_id == chain[1].event_id
