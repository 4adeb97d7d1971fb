"""Routing: each client's kept spans reach exactly that client's own sinks.

LiteLLM is patched once and there is one ``LeanLLMSpanProcessor`` in front of the export chain. A ``LeanLLM`` client
whose sinks differ from the process pipeline's binds each of its calls (by request id, while the call is in
flight) to its ``Route``: its own batch processors, each with its own SQL / service exporter and its own renderer.
The processor's ``Router`` then sends a kept span of a routed call to

- every *process-level* downstream processor (OTLP and other exporters given to ``configure()`` or named in
  ``OTEL_TRACES_EXPORTER``): they see every kept span of every client, content rendered in the call's mode;
- the route's own processors;

and never to the process pipeline's own store (a ``local`` processor), which receives only unrouted calls
(``litellm.completion`` called directly, or a client whose sinks are the pipeline's own). A request id bound by two
different routes at once cannot be told apart: such a call goes to neither route's store (logged), never to the
wrong tenant.

The binding lasts while the call is in flight, so a routed span must end before its call returns: it does, because
a client registers an end listener and ``instrumentation/deferred.py`` defers no span while one is registered. A
change that lets a client's calls defer must carry the route in the call record first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from leanllm_otel import semconv as sc
from leanllm_otel._internal import log_internal_error

logger = logging.getLogger(__name__)


_LIVE: list[Route] = []
_LIVE_LOCK = threading.Lock()


class Route:
    """One client's own downstream processors (possibly none: a client without persistence)."""

    def __init__(self, processors: Sequence[SpanProcessor] = (), name: str = "client") -> None:
        self.processors = tuple(processors)
        self.name = name
        if self.processors:
            with _LIVE_LOCK:
                _LIVE.append(self)  # flushed at exit when its client is never closed

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        ok = True
        for processor in self.processors:
            try:
                ok = processor.force_flush(timeout_millis) and ok
            except Exception:
                log_internal_error("flushing a client's processor")
                ok = False
        return ok

    def shutdown(self) -> None:
        with _LIVE_LOCK:
            if self in _LIVE:
                _LIVE.remove(self)
        for processor in self.processors:
            try:
                processor.shutdown()
            except Exception:
                log_internal_error("shutting down a client's processor")


_CONFLICT = Route((), "conflicting request id")
_BOUND: dict[str, tuple[Route, int]] = {}  # request id -> (route, calls in flight with that id)
_BOUND_LOCK = threading.Lock()


def bind(request_id: str, route: Route) -> None:
    """Route the call with ``request_id`` to ``route`` until :func:`unbind`."""
    with _BOUND_LOCK:
        current = _BOUND.get(request_id)
        if current is None:
            _BOUND[request_id] = (route, 1)
            return
        bound, count = current
        if bound is not route and bound is not _CONFLICT:
            logger.warning(
                "leanllm-otel: request id %r is in flight in two clients at once; its events go to neither store",
                request_id,
            )
            bound = _CONFLICT
        _BOUND[request_id] = (bound, count + 1)


def unbind(request_id: str) -> None:
    """One call bound under ``request_id`` has ended (or will never report)."""
    with _BOUND_LOCK:
        current = _BOUND.get(request_id)
        if current is None:
            return
        bound, count = current
        if count <= 1:
            del _BOUND[request_id]
        else:
            _BOUND[request_id] = (bound, count - 1)


def route_of(span: ReadableSpan) -> Route | None:
    """The route of the call ``span`` belongs to, or None (an unrouted call, or not an LLM span)."""
    if not _BOUND:
        return None
    request_id = (span.attributes or {}).get(sc.LEANLLM_REQUEST_ID)
    if not isinstance(request_id, str):
        return None
    bound = _BOUND.get(request_id)
    return bound[0] if bound is not None else None


class Router:
    """Chooses the processors a kept span goes to (see the module docstring)."""

    def __init__(self) -> None:
        self._local: tuple[SpanProcessor, ...] = ()
        self._lock = threading.Lock()

    def mark_local(self, processor: SpanProcessor) -> None:
        """``processor`` is the process pipeline's own store: it receives unrouted calls only."""
        with self._lock:
            self._local = (*self._local, processor)

    @property
    def local(self) -> tuple[SpanProcessor, ...]:
        return self._local

    def targets(self, span: ReadableSpan, downstream: tuple[SpanProcessor, ...]) -> Sequence[SpanProcessor]:
        route = route_of(span)
        if route is None:
            return downstream
        local = self._local
        shared = [processor for processor in downstream if processor not in local] if local else list(downstream)
        shared.extend(route.processors)
        return shared


_ROUTER_LOCK = threading.Lock()


def router_of(processor: Any) -> Router:
    """The router of a ``LeanLLMSpanProcessor``, created on first use."""
    with _ROUTER_LOCK:
        router: Router | None = getattr(processor, "router", None)
        if router is None:
            router = processor.router = Router()
        return router


def shutdown_routes(timeout_s: float) -> None:
    """Shut down every route whose client was never closed (at exit), within ``timeout_s`` in all."""
    with _LIVE_LOCK:
        routes = list(_LIVE)
    if not routes:
        return

    def shut_all() -> None:
        for route in routes:
            route.shutdown()

    worker = threading.Thread(target=shut_all, daemon=True)
    worker.start()
    worker.join(max(0.0, timeout_s))
