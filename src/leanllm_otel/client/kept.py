"""Which of a client's calls were kept: the front processor says so; the client never decides it again.

The ``LeanLLMSpanProcessor`` in front of the export chain reports each kept LLM span with its decision
(``add_end_listener``): :class:`KeptSpans` holds those of the client's own calls until the call's end (the
instrumentation's end-of-call listener, on the thread that ended the call) takes its own by span id. The processor
reports a span while it ends, which is before that end-of-call listener runs: the SDK span path ends the span
synchronously, and the deferred path (``instrumentation/deferred.py``) is not taken while an end-of-call listener
is registered, which every attached client is, because hooks and ``last_event`` need the call's span when the call
returns.

Without a leanllm processor in front of LiteLLM's spans (the application instrumented LiteLLM with its own
provider) nothing reports kept spans: then :func:`decision_without_processor` applies the processor's own rule
(``sampling.span_decision``) to the ended span, once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import ReadableSpan

from leanllm_otel import active
from leanllm_otel import semconv as sc
from leanllm_otel.processing.sampling import Keep, span_decision

if TYPE_CHECKING:
    from leanllm_otel.instrumentation.telemetry import Telemetry
    from leanllm_otel.pipeline import Pipeline
    from leanllm_otel.processing.processor import LeanLLMSpanProcessor


# Reports are taken within the call that made them; this bounds what a call whose end never reached the client
# (a listener failure) can leave behind.
_MAX_HELD = 1024


def kept_source(telemetry: Telemetry, pipeline: Pipeline | None) -> LeanLLMSpanProcessor | None:
    """The leanllm processor that sees this telemetry's spans: the pipeline's, or the ``opentelemetry-instrument``
    configurator's when it is on the tracer's provider; None without one."""
    if pipeline is not None:
        return pipeline.processor
    front = active.front
    if front is None:
        return None
    multi = getattr(telemetry.tracer, "span_processor", None)
    processors = getattr(multi, "_span_processors", None)
    if processors is None:  # not an SDK tracer we can look into: trust the configurator
        return front  # type: ignore[no-any-return]
    return front if front in processors else None


def decision_without_processor(telemetry: Telemetry, span: Any) -> Keep | None:
    """The keep decision for a span no leanllm processor saw (``sampling.span_decision``), None for no span."""
    if not isinstance(span, ReadableSpan):
        return None  # sampled out at start: no span was made
    return span_decision(span, telemetry.settings.sampling_rate)


class KeptSpans:
    """The kept spans the processor reported for one client's calls, until each call's end takes its own."""

    def __init__(self, is_mine: Callable[[object], bool]) -> None:
        self._is_mine = is_mine
        self._lock = threading.Lock()
        self._spans: dict[int, tuple[ReadableSpan, Keep]] = {}
        self._processor: LeanLLMSpanProcessor | None = None
        self._listener = self._on_kept  # one bound method, so remove_end_listener finds it

    @property
    def processor(self) -> LeanLLMSpanProcessor | None:
        return self._processor

    def listen(self, processor: LeanLLMSpanProcessor | None) -> None:
        """Hear ``processor`` from now on (and no other): idempotent, None stops listening."""
        with self._lock:
            previous, self._processor = self._processor, processor
            if previous is processor:
                return
            self._spans.clear()
        if previous is not None:
            previous.remove_end_listener(self._listener)
        if processor is not None:
            processor.add_end_listener(self._listener)

    def take(self, span: Any) -> tuple[ReadableSpan, Keep] | None:
        """The kept span (as the processor forwarded it) and its decision for the call whose span is ``span``;
        None when the processor did not keep it. Taken once."""
        if not self._spans:
            return None
        context = span.get_span_context()
        with self._lock:
            return self._spans.pop(context.span_id, None)

    def _on_kept(self, span: ReadableSpan, decision: Keep) -> None:
        if not self._is_mine((span.attributes or {}).get(sc.LEANLLM_REQUEST_ID)):
            return  # another client's call, or a direct LiteLLM call
        context = span.context
        if context is not None:
            with self._lock:
                spans = self._spans
                if len(spans) >= _MAX_HELD:  # a report whose call's end never came: the oldest goes
                    del spans[next(iter(spans))]
                spans[context.span_id] = (span, decision)
