"""Lineage: execution graphs and chains across stored events, and the tool calls inside them.

Two kinds of edge link events:

- ``parent_request_id`` (explicit, or filled by ``auto_chain``): "this call followed from that one";
- span parentage: an event whose span is the child of another event's span (same trace).

::

    graph = ExecutionGraph.from_events(store.list_events(correlation_id=cid, limit=1000))
    for root in graph.roots():
        print(graph.render(root.event_id))
    graph.chain(last_id)          # root ... last_id, following parents
    tool_calls(event)             # ToolCallRecord(id, name, arguments, result) for each call the model made

A parent that is not among the events (not stored, sampled out, outside the query) is reported by
``missing_parents()``; the child then counts as a root. Cycles (only possible with hand-set ids) are broken, never
followed forever.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from leanllm_otel.access import get_field as _get
from leanllm_otel.event import LLMEvent

__all__ = ["Edge", "ExecutionGraph", "ToolCallRecord", "tool_calls", "tool_calls_in"]

EdgeKind = Literal["parent_request", "span"]


@dataclass(frozen=True)
class Edge:
    parent: str
    child: str
    kind: EdgeKind


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call the model asked for, and (when a later event carries it) the tool's answer."""

    event_id: str
    id: str | None
    name: str
    arguments: Any
    result: Any = None
    result_event_id: str | None = None


def _load(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _calls_from_parts(messages: Any) -> Iterator[tuple[str | None, str, Any]]:
    for message in messages if isinstance(messages, list) else ():
        for part in _get(message, "parts") or ():
            if _get(part, "type") == "tool_call":
                yield _get(part, "id"), str(_get(part, "name") or ""), _load(_get(part, "arguments"))
        for call in _get(message, "tool_calls") or ():  # OpenAI-shaped messages
            function = _get(call, "function") or {}
            yield _get(call, "id"), str(_get(function, "name") or ""), _load(_get(function, "arguments"))


def tool_calls_in(event: LLMEvent) -> list[ToolCallRecord]:
    """The tool calls ``event``'s output asked for (from ``tool_calls`` or the output messages), in order."""
    records: list[ToolCallRecord] = []
    seen: set[tuple[str | None, str]] = set()
    sources: list[Iterable[tuple[str | None, str, Any]]] = []
    raw = event.tool_calls
    if isinstance(raw, list):
        sources.append(
            (
                _get(call, "id"),
                str(_get(call, "name") or _get(_get(call, "function") or {}, "name") or ""),
                _load(
                    _get(call, "arguments")
                    if _get(call, "arguments") is not None
                    else _get(_get(call, "function") or {}, "arguments")
                ),
            )
            for call in raw
            if isinstance(call, Mapping)
        )
    sources.append(_calls_from_parts(event.output_messages))
    for source in sources:
        for call_id, name, arguments in source:
            key = (call_id, name)
            if key in seen:
                continue
            seen.add(key)
            records.append(ToolCallRecord(event.event_id, call_id, name, arguments))
    return records


def _tool_results(event: LLMEvent) -> Iterator[tuple[str, Any]]:
    for message in event.input_messages if isinstance(event.input_messages, list) else ():
        for part in _get(message, "parts") or ():
            if _get(part, "type") == "tool_call_response" and _get(part, "id") is not None:
                yield str(_get(part, "id")), _load(_get(part, "response"))
        if _get(message, "role") == "tool" and _get(message, "tool_call_id") is not None:
            yield str(_get(message, "tool_call_id")), _load(_get(message, "content"))


def tool_calls(events: Sequence[LLMEvent] | LLMEvent) -> list[ToolCallRecord]:
    """Tool calls of one event or of many, each matched with its result from a later event's input (by id)."""
    batch = [events] if isinstance(events, LLMEvent) else sorted(events, key=lambda e: e.timestamp)
    results: dict[str, tuple[Any, str]] = {}
    for event in batch:
        for call_id, result in _tool_results(event):
            results.setdefault(call_id, (result, event.event_id))
    out: list[ToolCallRecord] = []
    for event in batch:
        for record in tool_calls_in(event):
            if record.id is not None and record.id in results:
                result, where = results[record.id]
                record = ToolCallRecord(record.event_id, record.id, record.name, record.arguments, result, where)
            out.append(record)
    return out


@dataclass
class ExecutionGraph:
    """Events as nodes, ``parent_request_id`` and span-parentage edges between them."""

    events: dict[str, LLMEvent] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    _children: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _parent: dict[str, str] = field(default_factory=dict, repr=False)
    _missing: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_events(cls, events: Iterable[LLMEvent]) -> ExecutionGraph:
        graph = cls()
        ordered = sorted(events, key=lambda e: (e.timestamp, e.event_id))
        graph.events = {event.event_id: event for event in ordered}
        by_span = {(e.trace_id, e.span_id): e.event_id for e in ordered if e.span_id is not None}
        for event in ordered:
            parent = event.parent_request_id
            kind: EdgeKind = "parent_request"
            if parent is None and event.parent_span_id is not None:
                parent = by_span.get((event.trace_id, event.parent_span_id))
                kind = "span"
            if parent is None or parent == event.event_id:
                continue
            if parent not in graph.events:
                graph._missing[event.event_id] = parent
                continue
            if graph._creates_cycle(parent, event.event_id):
                continue
            graph.edges.append(Edge(parent, event.event_id, kind))
            graph._parent[event.event_id] = parent
            graph._children.setdefault(parent, []).append(event.event_id)
        return graph

    def _creates_cycle(self, parent: str, child: str) -> bool:
        node: str | None = parent
        hops = 0
        while node is not None and hops <= len(self.events):
            if node == child:
                return True
            node = self._parent.get(node)
            hops += 1
        return False

    def __len__(self) -> int:
        return len(self.events)

    def roots(self) -> list[LLMEvent]:
        """Events without a parent among the events (oldest first)."""
        return [event for event_id, event in self.events.items() if event_id not in self._parent]

    def parent(self, event_id: str) -> LLMEvent | None:
        parent = self._parent.get(event_id)
        return self.events.get(parent) if parent is not None else None

    def children(self, event_id: str) -> list[LLMEvent]:
        return [self.events[child] for child in self._children.get(event_id, [])]

    def missing_parents(self) -> dict[str, str]:
        """``child event id -> parent id`` for parents that are not among the events (gaps in the chain)."""
        return dict(self._missing)

    def chain(self, event_id: str) -> list[LLMEvent]:
        """The path from the root down to ``event_id`` (inclusive), following parents."""
        if event_id not in self.events:
            raise KeyError(event_id)
        path = [self.events[event_id]]
        node = self._parent.get(event_id)
        while node is not None:
            path.append(self.events[node])
            node = self._parent.get(node)
        return list(reversed(path))

    def descendants(self, event_id: str) -> list[LLMEvent]:
        """Every event below ``event_id``, depth first, children in time order."""
        out: list[LLMEvent] = []
        stack = list(reversed(self._children.get(event_id, [])))
        while stack:
            node = stack.pop()
            out.append(self.events[node])
            stack.extend(reversed(self._children.get(node, [])))
        return out

    def depth(self, event_id: str) -> int:
        return len(self.chain(event_id)) - 1

    def totals(self, event_id: str | None = None) -> dict[str, Any]:
        """Calls, errors, tokens, cost and summed latency of one subtree (or of the whole graph)."""
        nodes = list(self.events.values()) if event_id is None else [self.events[event_id], *self.descendants(event_id)]
        return {
            "calls": len(nodes),
            "errors": sum(1 for e in nodes if e.is_error),
            "input_tokens": sum(e.input_tokens or 0 for e in nodes),
            "output_tokens": sum(e.output_tokens or 0 for e in nodes),
            "cost": round(sum(e.cost or 0.0 for e in nodes), 10),
            "latency_ms": sum(e.latency_ms or 0.0 for e in nodes),
        }

    def render(self, event_id: str | None = None) -> str:
        """An indented text tree (of one root, or of every root)."""
        lines: list[str] = []
        roots = [self.events[event_id]] if event_id is not None else self.roots()
        for root in roots:
            stack: list[tuple[str, int]] = [(root.event_id, 0)]
            while stack:
                node, depth = stack.pop()
                event = self.events[node]
                status = "ERROR " if event.is_error else ""
                tokens = f"{event.input_tokens or 0}/{event.output_tokens or 0}"
                lines.append(f"{'  ' * depth}{status}{event.event_id} {event.model} tokens={tokens}")
                stack.extend((child, depth + 1) for child in reversed(self._children.get(node, [])))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: nodes (id, model, status, parent) and edges."""
        return {
            "nodes": [
                {"event_id": e.event_id, "model": e.model, "status": e.status, "parent": self._parent.get(e.event_id)}
                for e in self.events.values()
            ],
            "edges": [{"parent": x.parent, "child": x.child, "kind": x.kind} for x in self.edges],
            "missing_parents": self.missing_parents(),
        }
