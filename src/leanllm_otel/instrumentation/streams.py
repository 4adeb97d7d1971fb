"""Stream proxies: LiteLLM's stream object, observed, with its span ended exactly once.

The proxy is a ``wrapt.ObjectProxy``, so ``isinstance(stream, litellm.CustomStreamWrapper)`` and every attribute
users reach for keep working. Endings: exhaustion (completed), an exception mid-stream (error), ``close()`` /
``aclose()`` / context-manager exit before exhaustion (closed), asyncio cancellation (cancelled), and garbage
collection of a stream nobody finished (abandoned). Only "completed" is a success.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import wrapt

from leanllm_otel import semconv as sc
from leanllm_otel._internal import log_internal_error
from leanllm_otel.instrumentation import litellm_compat
from leanllm_otel.instrumentation.attributes import semconv_provider, usage_attributes
from leanllm_otel.instrumentation.invocation import Invocation

if TYPE_CHECKING:
    from leanllm_otel.instrumentation.gate import ChunkMonitor


class _StreamState:
    """Everything observed so far; cheap per-chunk work only (a few attribute reads, one append)."""

    __slots__ = (
        "chunk_count",
        "chunks",
        "finish_reasons",
        "first_chunk_ns",
        "invocation",
        "monitor",
        "response_id",
        "response_model",
        "usage",
    )

    def __init__(self, invocation: Invocation) -> None:
        self.invocation = invocation
        self.chunk_count = 0
        self.first_chunk_ns: int | None = None
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.finish_reasons: dict[int, str] = {}
        self.usage: Any = None
        self.chunks: list[Any] | None = [] if invocation.record is not None else None
        admission = invocation.admission
        self.monitor: ChunkMonitor | None = None if admission is None else admission.monitor

    def observe(self, chunk: Any) -> None:
        try:
            if self.first_chunk_ns is None:
                self.first_chunk_ns = time.time_ns()
            self.chunk_count += 1
            if self.chunks is not None:
                self.chunks.append(chunk)
            if self.response_id is None:
                chunk_id = getattr(chunk, "id", None)
                if isinstance(chunk_id, str):
                    self.response_id = chunk_id
                model = getattr(chunk, "model", None)
                if isinstance(model, str):
                    self.response_model = model
            choices = getattr(chunk, "choices", None)
            if choices:
                for choice in choices:
                    reason = getattr(choice, "finish_reason", None)
                    if reason is not None:
                        self.finish_reasons[getattr(choice, "index", 0) or 0] = str(reason)
            usage = getattr(chunk, "usage", None)
            if usage is not None:
                self.usage = usage
        except Exception:
            log_internal_error("observing a stream chunk")

    def check(self, chunk: Any) -> BaseException | None:
        """Enforcement only (``monitor`` set): the violation to raise instead of delivering ``chunk``."""
        assert self.monitor is not None
        try:
            return self.monitor.feed(chunk)
        except Exception:
            log_internal_error("checking a stream chunk")
            return None

    def end(self, outcome: str, exc: BaseException | None = None, stream: Any = None) -> None:
        try:
            attributes = self._end_attributes(outcome, stream)
        except Exception:
            # The span still ends (a bug here must neither leave it open nor reach the caller's loop).
            attributes = {sc.LEANLLM_STREAM_OUTCOME: outcome, sc.LEANLLM_STREAM_CHUNKS: self.chunk_count}
            log_internal_error("recording the end of a stream")
        if outcome == sc.STREAM_COMPLETED:
            self.invocation.end_stream(attributes, None, self.chunks)
            return
        if exc is None:
            exc = StreamNotCompleted(outcome)
        self.invocation.end_stream(attributes, exc, self.chunks)

    def _end_attributes(self, outcome: str, stream: Any) -> dict[str, Any]:
        invocation = self.invocation
        attributes: dict[str, Any] = {
            sc.LEANLLM_STREAM_OUTCOME: outcome,
            sc.LEANLLM_STREAM_CHUNKS: self.chunk_count,
        }
        end_ns = time.time_ns()
        if self.first_chunk_ns is not None:
            attributes[sc.LEANLLM_TTFT_MS] = (self.first_chunk_ns - invocation.start_ns) / 1e6
            attributes[sc.LEANLLM_STREAM_TIME_MS] = (end_ns - invocation.start_ns) / 1e6
        if self.response_id:
            attributes[sc.GEN_AI_RESPONSE_ID] = self.response_id
        if self.response_model:
            attributes[sc.GEN_AI_RESPONSE_MODEL] = self.response_model
        if self.finish_reasons:
            attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] = [
                self.finish_reasons[i] for i in sorted(self.finish_reasons)
            ]
        if self.monitor is not None:
            try:
                attributes.update(self.monitor.end_attributes())
            except Exception:
                log_internal_error("recording stream findings")
        usage = usage_attributes(self.usage)
        if usage:
            attributes.update(usage)
        else:
            # No usage chunk: say so rather than estimate.
            attributes[sc.LEANLLM_USAGE_REPORTED] = False
        provider = semconv_provider(litellm_compat.hidden_params(stream).get("custom_llm_provider"))
        if provider:
            attributes[sc.GEN_AI_PROVIDER_NAME] = provider
        return attributes


class StreamNotCompleted(Exception):
    """Recorded (never raised) as the error of a stream that was closed, abandoned or cancelled before its end."""

    def __init__(self, outcome: str) -> None:
        super().__init__(f"stream {outcome} before completion")
        self.outcome = outcome


class StreamProxy(wrapt.ObjectProxy):  # type: ignore[type-arg]
    """Sync and async iteration over a LiteLLM stream with exactly-once span ending."""

    def __init__(self, wrapped: Any, invocation: Invocation) -> None:
        super().__init__(wrapped)
        self._self_state = _StreamState(invocation)
        self._self_done = False

    def _self_finish(self, outcome: str, exc: BaseException | None = None) -> None:
        if self._self_done:
            return
        self._self_done = True
        self._self_state.end(outcome, exc, self.__wrapped__)

    # --- sync -------------------------------------------------------------------------------------------------
    def __iter__(self) -> StreamProxy:
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self.__wrapped__)
        except StopIteration:
            self._self_finish(sc.STREAM_COMPLETED)
            raise
        except GeneratorExit:
            self._self_finish(sc.STREAM_CLOSED)
            raise
        except BaseException as exc:
            self._self_finish(sc.STREAM_ERROR, exc)
            raise
        self._self_state.observe(chunk)
        if self._self_state.monitor is not None:
            violation = self._self_state.check(chunk)
            if violation is not None:
                self._self_finish(sc.STREAM_ERROR, violation)
                self.close()
                raise violation
        return chunk

    def close(self) -> None:
        try:
            closer = getattr(self.__wrapped__, "close", None)
            if callable(closer):
                closer()
        finally:
            self._self_finish(sc.STREAM_CLOSED)

    def __enter__(self) -> StreamProxy:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            self._self_finish(sc.STREAM_ERROR, exc)
        self.close()

    # --- async ------------------------------------------------------------------------------------------------
    def __aiter__(self) -> StreamProxy:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_finish(sc.STREAM_COMPLETED)
            raise
        except asyncio.CancelledError as exc:
            self._self_finish(sc.STREAM_CANCELLED, exc)
            raise
        except BaseException as exc:
            self._self_finish(sc.STREAM_ERROR, exc)
            raise
        self._self_state.observe(chunk)
        if self._self_state.monitor is not None:
            violation = self._self_state.check(chunk)
            if violation is not None:
                self._self_finish(sc.STREAM_ERROR, violation)
                await self.aclose()
                raise violation
        return chunk

    async def aclose(self) -> None:
        try:
            closer = getattr(self.__wrapped__, "aclose", None)
            if callable(closer):
                await closer()
        finally:
            self._self_finish(sc.STREAM_CLOSED)

    async def __aenter__(self) -> StreamProxy:
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            outcome = sc.STREAM_CANCELLED if isinstance(exc, asyncio.CancelledError) else sc.STREAM_ERROR
            self._self_finish(outcome, exc)
        await self.aclose()

    def __del__(self) -> None:
        if not self._self_done:
            with contextlib.suppress(Exception):  # nothing may escape a finalizer
                self._self_finish(sc.STREAM_ABANDONED)
