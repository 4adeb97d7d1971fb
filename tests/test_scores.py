"""Feedback scores: validation, storage through every entry point, and the gen_ai.evaluation.result event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

import leanllm_otel
from leanllm_otel import semconv as sc
from leanllm_otel.cli import main as cli
from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.feedback import ScoreRecorder
from leanllm_otel.scores import make_score, parse_value
from leanllm_otel.store import engine as db
from leanllm_otel.store.schema import scores as scores_table
from loopback.viewer_data import seed
from support import OTLPReceiver


def _stored(url: str) -> list[Any]:
    async def read() -> list[Any]:
        engine = db.create_engine(db.async_database_url(url))
        try:
            async with engine.connect() as connection:
                return list(await connection.execute(select(scores_table).order_by(scores_table.c.created_at)))
        finally:
            await engine.dispose()

    return asyncio.run(read())


@pytest.mark.parametrize(
    ("value", "kind", "number", "label"),
    [(True, "boolean", 1.0, "true"), (False, "boolean", 0.0, "false"), (3, "numeric", 3.0, None),
     (0.25, "numeric", 0.25, None), ("billing", "category", None, "billing")],
)  # fmt: skip
def test_values_become_kind_number_and_label(value: Any, kind: str, number: float | None, label: str | None) -> None:
    score = make_score("ev-1", "quality", value)
    assert (score.kind, score.value, score.label) == (kind, number, label)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"event_id": " "}, "event_id"), ({"name": ""}, "name"), ({"value": float("nan")}, "value"),
     ({"value": [1]}, "value"), ({"comment": "x" * 10_001}, "comment"), ({"name": "n" * 201}, "name")],
)  # fmt: skip
def test_bad_input_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    arguments = {"event_id": "ev-1", "name": "quality", "value": 1, **kwargs}
    with pytest.raises(ValueError, match=f"score {field}"):
        make_score(**arguments)


def test_typed_values_parse_as_people_write_them() -> None:
    assert [parse_value(t) for t in ("true", "DOWN", "4", "0.5", "great")] == [True, False, 4, 0.5, "great"]


def test_score_function_stores_into_the_configured_store(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = seed(sqlite_url, count=3)
    monkeypatch.setenv("LEANLLM_DATABASE_URL", sqlite_url)
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    stored = leanllm_otel.score(ids["searchable"], "user_feedback", False, comment="wrong, write to ada@example.com")
    assert stored is not None and stored.kind == "boolean"
    rows = _stored(sqlite_url)
    assert [(r.event_id, r.name, r.value, r.label, r.source) for r in rows] == [
        (ids["searchable"], "user_feedback", 0.0, "false", "api")
    ]
    # Content capture is off here (metadata mode): the comment is kept in redacted form, never verbatim.
    assert rows[0].comment == "wrong, write to [PII:EMAIL]"
    with pytest.raises(ValueError, match="score name"):
        leanllm_otel.score(ids["searchable"], " ", 1)


def test_score_migrates_a_store_older_than_the_scores_table(sqlite_url: str) -> None:
    async def old_store() -> None:
        engine = db.create_engine(db.async_database_url(sqlite_url))
        try:
            await db.upgrade(engine, "0005_drop_trace_id_index")
        finally:
            await engine.dispose()

    asyncio.run(old_store())
    recorder = ScoreRecorder(LeanLLMConfig(database_url=sqlite_url), emitter=None)
    try:
        recorder.record("ev-x", "relevance", 0.75)
    finally:
        recorder.close()
    assert [(r.event_id, r.value, r.kind) for r in _stored(sqlite_url)] == [("ev-x", 0.75, "numeric")]


def test_cli_scores_a_stored_event_and_refuses_an_unknown_one(sqlite_url: str, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    ids = seed(sqlite_url, count=2)
    assert cli(["score", ids["error"], "helpful", "4", "--comment", "ok", "--database-url", sqlite_url]) == 0
    assert "helpful = 4 (numeric)" in capsys.readouterr().out
    assert cli(["score", "no-such-event", "helpful", "4", "--database-url", sqlite_url]) == 1
    assert "not found" in capsys.readouterr().err
    assert cli(["score", ids["error"], "helpful", "inf", "--database-url", sqlite_url]) == 2
    assert [(r.event_id, r.name, r.value, r.comment, r.source) for r in _stored(sqlite_url)] == [
        (ids["error"], "helpful", 4.0, "ok", "cli")
    ]


@pytest.fixture
def otlp_env(otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[OTLPReceiver]:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    yield otlp_receiver


def _wait_for_logs(receiver: OTLPReceiver, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(receiver.log_records) >= n:
            return receiver.log_records
        time.sleep(0.05)
    raise AssertionError(f"expected {n} log records, got {receiver.log_records}")


def test_scores_leave_as_semconv_evaluation_events(sqlite_url: str, otlp_env: OTLPReceiver) -> None:
    ids = seed(sqlite_url, count=1)
    recorder = ScoreRecorder(LeanLLMConfig(database_url=sqlite_url))
    assert recorder.emitter is not None
    try:
        recorder.record(ids["searchable"], "relevance", 0.5, "on topic")
        recorder.record(ids["searchable"], "user_feedback", True)
        recorder.record(ids["searchable"], "category", "billing")
        assert recorder.flush()
    finally:
        recorder.close()
    records = _wait_for_logs(otlp_env, 3)
    by_name = {r["attributes"][sc.GEN_AI_EVALUATION_NAME]: r for r in records}
    assert all(r["event_name"] == sc.GEN_AI_EVALUATION_RESULT_EVENT for r in records)
    relevance = by_name["relevance"]["attributes"]
    assert relevance[sc.GEN_AI_EVALUATION_SCORE_VALUE] == 0.5
    assert relevance[sc.GEN_AI_EVALUATION_EXPLANATION] == "on topic"
    assert relevance[sc.GEN_AI_RESPONSE_ID] == "chatcmpl-1"
    assert relevance[sc.LEANLLM_REQUEST_ID] == ids["searchable"]
    assert sc.GEN_AI_EVALUATION_SCORE_LABEL not in relevance
    feedback = by_name["user_feedback"]["attributes"]
    assert (feedback[sc.GEN_AI_EVALUATION_SCORE_VALUE], feedback[sc.GEN_AI_EVALUATION_SCORE_LABEL]) == (1.0, "true")
    assert by_name["category"]["attributes"][sc.GEN_AI_EVALUATION_SCORE_LABEL] == "billing"
    # Parented to the evaluated call's span, as the convention asks.
    from leanllm_otel.store import EventStore

    with EventStore(sqlite_url) as store:
        event = store.get_event(ids["searchable"])
    assert event is not None and event.trace_id and event.span_id
    assert {(r["trace_id"], r["span_id"]) for r in records} == {(event.trace_id, event.span_id)}


def test_no_otlp_configuration_means_no_evaluation_events(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    recorder = ScoreRecorder(LeanLLMConfig(database_url=sqlite_url))
    try:
        assert recorder.emitter is None
    finally:
        recorder.close()
    with pytest.raises(ValueError, match="scores need a place to go"):
        ScoreRecorder(LeanLLMConfig(), emitter=None)
