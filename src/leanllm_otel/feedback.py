"""Recording feedback scores: ``leanllm_otel.score()``, ``LeanLLM.score()``, ``leanllm-otel score`` and the viewer.

::

    leanllm_otel.score(event.event_id, "user_feedback", True, comment="exactly what I needed")
    leanllm_otel.score(event.event_id, "relevance", 0.8)
    leanllm_otel.score(event.event_id, "category", "billing")

Every path goes through :class:`ScoreRecorder`: validate (ValueError naming the field), render the comment, write
the row (migrating a store that predates the scores table when ``auto_migrate`` is on), emit the
``gen_ai.evaluation.result`` event (``leanllm_otel.evaluation``). A score may name an event that has not reached the
store yet (it is written regardless). The comment is free text a person typed: it follows the content redaction
mode like an error message does, except that ``metadata`` mode keeps it in ``redacted`` form instead of dropping it.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import threading
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.evaluation import EvaluatedCall, EvaluationEmitter, emitter_from_environment
from leanllm_otel.processing.redaction import detector_for, fallback_hash_key, render_error_message
from leanllm_otel.redaction_mode import RedactionMode
from leanllm_otel.scores import MAX_COMMENT_CHARS, Score, ScoreValue, insert_score, make_score
from leanllm_otel.settings import TelemetrySettings
from leanllm_otel.store import engine as db
from leanllm_otel.store.schema import events

__all__ = ["ScoreRecorder", "record_for", "recorder_for", "render_comment", "score"]

logger = logging.getLogger(__name__)

_AUTO: Any = object()


def render_comment(comment: str, config: LeanLLMConfig) -> str | None:
    """The stored and exported form of a score comment under ``config``'s redaction mode."""
    settings = TelemetrySettings.from_config(config)
    mode = settings.redaction_mode(None)
    if mode is RedactionMode.METADATA:
        mode = RedactionMode.REDACTED
    key = config.hash_key.get_secret_value().encode() if config.hash_key is not None else None
    if mode is RedactionMode.HASHED and key is None:
        key = fallback_hash_key()
    return render_error_message(
        comment,
        mode,
        capture=settings.capture_content,
        cap=MAX_COMMENT_CHARS,
        detector=detector_for(settings),
        key=key,
    )


def _missing_table(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", None) or exc).lower()
    return "no such table" in text or ("relation" in text and "does not exist" in text)


class ScoreRecorder:
    """Writes scores into the SQL store of ``config`` (when it has one) and emits their evaluation events.

    ``emitter``: the default finds one from the environment (None when no OTLP export is configured).
    """

    def __init__(
        self, config: LeanLLMConfig, *, emitter: EvaluationEmitter | None = _AUTO, otlp_configured: bool = False
    ) -> None:
        self.config = config
        if emitter is _AUTO:
            emitter = emitter_from_environment(service_name=config.service_name, otlp_configured=otlp_configured)
        self.emitter: EvaluationEmitter | None = emitter
        url = config.database_url if config.persistence_target == "sql" else None
        if url is None and emitter is None:
            raise ValueError(
                "scores need a place to go: a SQL store (database_url / LEANLLM_DATABASE_URL) or OTLP export "
                "(OTEL_EXPORTER_OTLP_ENDPOINT)"
            )
        self._database = db.Database(url, name="leanllm-scores") if url is not None else None

    @property
    def stores(self) -> bool:
        return self._database is not None

    def record(
        self,
        event_id: str,
        name: str,
        value: ScoreValue,
        comment: str | None = None,
        *,
        source: str = "api",
        call: EvaluatedCall | None = None,
        timeout_s: float = 10.0,
    ) -> Score:
        """Validate, store and emit one score. Raises ValueError (bad input) or the database's error."""
        score = make_score(event_id, name, value, comment, source=source)
        if score.comment is not None:
            score = dataclasses.replace(score, comment=render_comment(score.comment, self.config))
        if self._database is not None:
            found = self._database.run(lambda engine: self._write(engine, score), timeout_s)
            call = call or found
        if self.emitter is not None:
            self.emitter.emit(score, call)
        return score

    async def _write(self, engine: AsyncEngine, score: Score) -> EvaluatedCall | None:
        try:
            async with engine.begin() as connection:
                await insert_score(connection, score)
        except sa_exc.SQLAlchemyError as exc:
            if not (_missing_table(exc) and self.config.auto_migrate):
                raise
            await db.upgrade(engine)  # a store older than the scores table, or none yet
            async with engine.begin() as connection:
                await insert_score(connection, score)
        c = events.c
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    select(c.trace_id, c.span_id, c.response_id).where(c.event_id == score.event_id)
                )
            ).first()
        return None if row is None else EvaluatedCall(row.trace_id, row.span_id, row.response_id)

    def flush(self, timeout_ms: int = 5000) -> bool:
        """Send the evaluation events emitted so far (they are batched)."""
        return self.emitter.flush(timeout_ms) if self.emitter is not None else True

    def close(self) -> None:
        if self._database is not None:
            self._database.close()


_recorders: dict[tuple[str | None, bool], ScoreRecorder] = {}
_recorders_lock = threading.Lock()


def recorder_for(config: LeanLLMConfig, *, otlp_configured: bool = False) -> ScoreRecorder:
    """The shared recorder for ``config``'s store (one database connection per store and process)."""
    key = (config.database_url, otlp_configured)
    with _recorders_lock:
        recorder = _recorders.get(key)
        if recorder is None:
            recorder = _recorders[key] = ScoreRecorder(config, otlp_configured=otlp_configured)
        return recorder


@atexit.register
def _close_recorders() -> None:
    with _recorders_lock:
        recorders = list(_recorders.values())
        _recorders.clear()
    for recorder in recorders:
        recorder.flush(2000)
        recorder.close()


def record_for(
    config: LeanLLMConfig,
    pipeline: Any,
    event_id: str,
    name: str,
    value: ScoreValue,
    comment: str | None = None,
    call: EvaluatedCall | None = None,
) -> Score | None:
    """One score through the shared recorder of ``config`` (the public functions' common path; never raises on
    a store failure, which is logged; ValueError for bad arguments)."""
    exports_otlp = any(type(e).__name__ == "OTLPSpanExporter" for e in getattr(pipeline, "exporters", ()))
    recorder = recorder_for(config, otlp_configured=exports_otlp)
    try:
        return recorder.record(event_id, name, value, comment, call=call)
    except ValueError:
        raise  # bad arguments (validated before anything is written)
    except Exception as exc:
        logger.warning("leanllm-otel: score %r for event %s was not stored: %s", name, event_id, exc)
        return None


def score(event_id: str, name: str, value: ScoreValue, comment: str | None = None) -> Score | None:
    """Record a feedback score for a stored (or soon stored) event; returns it, or None when it could not be stored.

    ``value``: a number, a boolean (thumbs up = True) or a category string. The store is the one of the active
    ``configure()`` pipeline, else ``LEANLLM_DATABASE_URL``. Bad arguments raise ValueError; a failing store never
    raises (logged as a warning).
    """
    from leanllm_otel.pipeline import active_pipeline

    pipeline = active_pipeline()
    config = pipeline.config if pipeline is not None else LeanLLMConfig.from_env()
    return record_for(config, pipeline, event_id, name, value, comment)
