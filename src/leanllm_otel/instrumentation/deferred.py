"""Deferred span materialisation: when the export pipeline is ours, the caller's thread builds no SDK span.

Eligible when the provider's processors hold one ``LeanLLMSpanProcessor`` whose downstream processors all batch
(``BatchSpanProcessor``: export runs on another thread anyway), no guard is attached and no end-of-call listener is
registered. Then, per call:

- at start, on the caller's thread: the start attributes, one head-sampler decision and fresh ids from the
  provider's id generator; a ``NonRecordingSpan`` with exactly the span context the SDK span will have is made
  current, so HTTP child spans nest under it;
- at a successful end, on the caller's thread: the content record is sealed, and the invocation itself (timestamps,
  start attributes, a reference to the response) is queued;
- on this module's thread (``leanllm-materialise``, woken per ``_WAKE_AT`` calls or every ``_WAKE_S``): the SDK span
  is built with the same ids and sampling result, given its response attributes and metric points, and ended, so
  every processor on the provider (ours and any the application attached straight to it) gets ``on_start`` and
  ``on_end`` then: up to ``_WAKE_S`` after the call, both at once, with the call's own timestamps.

A failing call, and any call arriving while ``_MAX_PENDING`` are already queued, is materialised on the caller's
thread at once (errors are always kept; the backlog stays bounded without dropping). ``LeanLLMSpanProcessor``
drains the queue before a flush, a shutdown and a counter read. Other providers keep the SDK span path.

It reads the SDK ``Tracer``'s public ``span_processor`` / ``sampler`` / ``id_generator``; the private attributes it
needs (the multi-processor's members) come from ``otel_compat``.
"""

from __future__ import annotations

import contextlib
import copy
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Tracer
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import Sampler, SamplingResult
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from leanllm_otel import otel_compat
from leanllm_otel._internal import log_internal_error
from leanllm_otel.instrumentation import direct

# Set False to take the SDK span path everywhere (benchmarks compare both in one process).
ENABLED = True

_WAKE_AT = 64  # queued calls that wake the thread before its timer
_WAKE_S = 0.05
_MAX_PENDING = 4096

_RANDOM_TRACE_ID: int | None = getattr(TraceFlags, "RANDOM_TRACE_ID", None)  # SDK 1.41+


class Front(Protocol):
    """What is asked of ``LeanLLMSpanProcessor`` (matched by shape: the call path does not import the processor)."""

    @property
    def downstream(self) -> tuple[Any, ...]: ...

    def add_pending_source(self, drain: Callable[[], None], stop: Callable[[], None]) -> None: ...

    def on_end(self, span: ReadableSpan) -> None: ...


class Job(Protocol):
    """An ended call to turn into its span (or metric points) off the caller's thread."""

    def materialise(self) -> None: ...


class _Preset(threading.local):
    start: DeferredStart | None = None


_PRESET = _Preset()


class _PresetIds(IdGenerator):
    """The ids drawn on the caller's thread, handed to the SDK's ``start_span`` on the materialising thread."""

    def __init__(self, delegate: IdGenerator) -> None:
        self._delegate = delegate

    def generate_span_id(self) -> int:
        start = _PRESET.start
        return start.span_id if start is not None else self._delegate.generate_span_id()

    def generate_trace_id(self) -> int:
        start = _PRESET.start
        return start.trace_id if start is not None else self._delegate.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return bool(getattr(self._delegate, "is_trace_id_random", lambda: True)())


class _PresetSampler(Sampler):
    """The decision taken on the caller's thread, returned again (the head sampler runs once per call)."""

    def __init__(self, delegate: Sampler) -> None:
        self._delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        start = _PRESET.start
        if start is not None:
            return start.result
        return self._delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return self._delegate.get_description()


class DeferredStart:
    """What the caller's thread decided at start; ``span`` is the stand-in made current during the call."""

    __slots__ = ("attributes", "deferral", "name", "parent_context", "result", "span", "span_id", "trace_id")

    def __init__(
        self,
        deferral: Deferral,
        name: str,
        parent_context: Context,
        trace_id: int,
        span_id: int,
        result: SamplingResult,
        span: NonRecordingSpan,
    ) -> None:
        self.deferral = deferral
        self.name = name
        self.parent_context = parent_context
        self.trace_id = trace_id
        self.span_id = span_id
        self.result = result
        self.attributes = result.attributes
        self.span = span

    def start_span(self, start_ns: int, success: bool) -> Any:
        """The span to end: for a success on a provider whose only processor is ours, a ``DirectSpan`` that
        becomes its ``ReadableSpan`` at ``end``; otherwise the SDK span (``sdk_span``)."""
        if success and self.deferral.direct:
            return direct.DirectSpan(self, start_ns)
        return self.sdk_span(start_ns)

    def sdk_span(self, start_ns: int) -> Any:
        """The SDK span, with the ids and decision taken at start (on whatever thread materialises it)."""
        _PRESET.start = self
        try:
            return self.deferral.tracer.start_span(
                self.name,
                context=self.parent_context,
                kind=SpanKind.CLIENT,
                attributes=self.attributes,
                start_time=start_ns,
            )
        finally:
            _PRESET.start = None


class Deferral:
    """One tracer's deferred path onto one ``LeanLLMSpanProcessor``'s queue."""

    def __init__(self, tracer: Tracer, processor: Front, sole: bool = False) -> None:
        self.processor = processor
        self.direct = direct.eligible(tracer, sole)  # successes skip the SDK _Span (direct.py)
        self.queue = queue_of(processor)
        self._sampler: Sampler = tracer.sampler
        self._ids: IdGenerator = tracer.id_generator
        # A copy of our tracer whose sampler and id generator replay the caller's choices; it shares the
        # provider's span processor, resource and limits.
        self.tracer = copy.copy(tracer)
        self.tracer.sampler = _PresetSampler(tracer.sampler)
        self.tracer.id_generator = _PresetIds(tracer.id_generator)
        queues = (otel_compat.batch_queue(p) for p in processor.downstream)
        self._export_queues = tuple(q for q in queues if isinstance(q, deque) and q.maxlen is not None)

    def submit(self, job: Job) -> None:
        """Queue an ended call; while an export queue is full (its exporter is behind) materialise it now, so
        a stalled exporter drops the oldest spans exactly as on the SDK path, with one producer at a time."""
        for queue in self._export_queues:
            if len(queue) >= queue.maxlen:  # type: ignore[operator]
                self.queue.run_now(job)
                return
        self.queue.submit(job)

    def open(self, name: str, attributes: dict[str, Any], parent_context: Context) -> DeferredStart | None:
        """The start of a deferred span, or None when the head sampler does not record it (the SDK path then)."""
        parent = get_current_span(parent_context).get_span_context()
        root = not parent.is_valid
        trace_id = self._ids.generate_trace_id() if root else parent.trace_id
        result = self._sampler.should_sample(parent_context, trace_id, name, SpanKind.CLIENT, attributes, ())
        if not result.decision.is_recording():  # type: ignore[no-untyped-call]
            return None
        sampled = result.decision.is_sampled()  # type: ignore[no-untyped-call]
        flags = TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT
        if _RANDOM_TRACE_ID is not None:
            inherited = getattr(parent.trace_flags, "random_trace_id", False)
            if self._ids.is_trace_id_random() if root else inherited:
                flags |= _RANDOM_TRACE_ID
        span_id = self._ids.generate_span_id()
        span = NonRecordingSpan(SpanContext(trace_id, span_id, False, TraceFlags(flags), result.trace_state))
        return DeferredStart(self, name, parent_context, trace_id, span_id, result, span)


class DeferredSpans:
    """The queue of ended calls waiting to become SDK spans, and the thread that materialises them."""

    def __init__(self) -> None:
        self._pending: deque[Job] = deque()
        self._lock = threading.RLock()  # held while materialising: a flush waits for the batch in progress
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False
        _INSTANCES.add(self)

    def submit(self, job: Job) -> None:
        """Called on the caller's thread: queue ``job`` (or materialise it now when the backlog is full)."""
        pending = self._pending
        if len(pending) >= _MAX_PENDING or self._stopped:
            self.run_now(job)
            return
        pending.append(job)
        if self._thread is None:
            self._start()
        wake = self._wake
        if len(pending) >= _WAKE_AT and not wake.is_set():  # once: until the thread runs, every call would set it
            wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._loop, name="leanllm-materialise", daemon=True)
            self._thread.start()

    def _after_fork(self) -> None:
        # The parent materialises what it queued (like the SDK's batch queue); its thread and lock stay there.
        self._pending.clear()
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._thread = None

    def _loop(self) -> None:
        while not self._stopped:
            self._wake.wait(_WAKE_S)
            self._wake.clear()
            self.drain()

    def run_now(self, job: Job) -> None:
        """Materialise ``job`` on this thread, one at a time with the queue's (processors see one producer)."""
        with self._lock:
            _run(job)

    def drain(self) -> None:
        """Materialise everything queued so far (any thread). Jobs are taken under the lock, so when this returns
        none is still being materialised elsewhere (a flush that follows sees them all)."""
        pending = self._pending
        while True:
            with self._lock:
                try:
                    job = pending.popleft()
                except IndexError:
                    return
                _run(job)

    def stop(self) -> None:
        self._stopped = True
        self.drain()
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)


def _run(job: Job) -> None:
    try:
        job.materialise()
    except Exception:
        log_internal_error("materialising a deferred span")


_INSTANCES: weakref.WeakSet[DeferredSpans] = weakref.WeakSet()


def _forked() -> None:
    for queue in list(_INSTANCES):
        queue._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)

_QUEUES: weakref.WeakKeyDictionary[Front, DeferredSpans] = weakref.WeakKeyDictionary()
_QUEUES_LOCK = threading.Lock()


def queue_of(processor: Front) -> DeferredSpans:
    """The processor's deferred queue, created (and registered for draining) on first use."""
    with _QUEUES_LOCK:
        queue = _QUEUES.get(processor)
        if queue is None:
            queue = _QUEUES[processor] = DeferredSpans()
            processor.add_pending_source(queue.drain, queue.stop)
        return queue


class DeferralCache:
    """Per ``Telemetry``: the deferral for its tracer, re-derived only when a processor list changes."""

    __slots__ = ("_deferral", "_downstream", "_key", "_multi", "_ours", "_tracer")

    def __init__(self, tracer: Any) -> None:
        self._tracer = tracer
        self._multi = getattr(tracer, "span_processor", None) if isinstance(tracer, Tracer) else None
        self._key: Any = None
        self._downstream: Any = None
        self._deferral: Deferral | None = None
        self._ours: Front | None = None

    def get(self) -> Deferral | None:
        if not ENABLED or self._multi is None:
            return None
        processors = otel_compat.multi_processor_members(self._multi)
        if processors is not self._key:
            self._key = processors
            self._ours = _single(processors)
            self._downstream = self._deferral = None
        ours = self._ours
        if ours is None:
            return None
        downstream = ours.downstream
        if downstream is not self._downstream:
            self._downstream = downstream
            eligible = bool(downstream) and all(isinstance(p, BatchSpanProcessor) for p in downstream)
            # Nothing observes the live _Span: ours is the provider's only processor, and no batch processor behind
            # it overrides on_start (the SDK's does nothing).
            sole = (
                isinstance(self._key, tuple)
                and len(self._key) == 1
                and all(type(p).on_start is BatchSpanProcessor.on_start for p in downstream)
            )
            self._deferral = Deferral(self._tracer, ours, sole) if eligible else None
        return self._deferral


def _single(processors: Any) -> Front | None:
    if type(processors) is not tuple:
        return None
    ours = [p for p in processors if callable(getattr(p, "add_pending_source", None)) and hasattr(p, "downstream")]
    return ours[0] if len(ours) == 1 else None


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Take the SDK span path inside this block (benchmarks, tests)."""
    global ENABLED
    previous, ENABLED = ENABLED, False
    try:
        yield
    finally:
        ENABLED = previous
