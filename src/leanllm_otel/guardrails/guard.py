"""``Guard``: the one object the instrumentation consults, and the thread that does the guard's slow work.

The guard is the instrumentation's call gate (``instrumentation/gate.py``'s ``CallGate``, implemented structurally:
this module imports nothing from ``leanllm_otel.instrumentation``). Hot path (caller's thread), only while it is
installed on a ``Telemetry``:

- :meth:`Guard.admit` at span start: the prompt check of the call's :class:`EnforcementPolicy`, admission against
  ``block`` budgets, and a :class:`StreamMonitor` for streams whose policy stops on secrets. A refusal is returned
  (``leanllm.security.blocked``, ``block_reason``); the invocation ends its span with it (error status, so it is
  always exported) and raises the refusal to the caller.
- :meth:`Guard.call_ended`: puts a reference to the ended span's attributes on a bounded queue (full: dropped and
  counted). Nothing else.

Guard thread: cost (LiteLLM's price map when the span has none), budget settlement and warnings, anomaly scoring,
error bursts, alerts, guardrail events into the store (``records.py``). ``GuardExporter`` (``exporter.py``,
optional, on an export thread) copies what the guard thread concluded about a span onto it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter

from leanllm_otel import semconv as sc
from leanllm_otel._internal import log_internal_error
from leanllm_otel.cost import span_cost
from leanllm_otel.event import findings_text
from leanllm_otel.guardrails.alerts import ANOMALY, BLOCKED, BUDGET, ERROR_BURST, FINDING, Alert, AlertDispatcher
from leanllm_otel.guardrails.anomaly import AnomalyDetector
from leanllm_otel.guardrails.budgets import BudgetLedger, BudgetManager, Reservation
from leanllm_otel.guardrails.enforcement import check_prompt
from leanllm_otel.guardrails.errors import LeanLLMBudgetExceeded, LeanLLMGuardrailError
from leanllm_otel.guardrails.exporter import GuardExporter
from leanllm_otel.guardrails.policy import EnforcementPolicy, resolve_policy
from leanllm_otel.guardrails.records import budget_alert, call_labels, event_row, number, tokens_of
from leanllm_otel.guardrails.streaming import StreamMonitor
from leanllm_otel.processing.detectors import SECRET, Detector, DetectorConfig, Severity

__all__ = ["CallGuard", "ErrorBurst", "Guard", "GuardExporter", "call_labels"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorBurst:
    """Alert when ``threshold`` calls to one model fail within ``window_s``."""

    threshold: int = 10
    window_s: float = 60.0


class CallGuard:
    """What the guard keeps for one call it saw start (the gate's ``Admission``): a refusal, or its monitor and
    budget reservations."""

    __slots__ = ("monitor", "refusal", "refusal_attributes", "reservations")

    def __init__(
        self,
        monitor: StreamMonitor | None,
        reservations: tuple[Reservation, ...],
        refusal: LeanLLMGuardrailError | None = None,
        refusal_attributes: Mapping[str, Any] | None = None,
    ) -> None:
        self.monitor = monitor
        self.reservations = reservations
        self.refusal = refusal
        self.refusal_attributes: Mapping[str, Any] = refusal_attributes or {}


_STOP = object()


class Guard:
    """Enforcement, budgets, anomalies and alerts for instrumented calls. Install with :meth:`attach`."""

    def __init__(
        self,
        *,
        policy: EnforcementPolicy | None = None,
        budgets: BudgetManager | None = None,
        alerts: AlertDispatcher | None = None,
        anomalies: AnomalyDetector | None = None,
        detector: Detector | None = None,
        error_burst: ErrorBurst | None = ErrorBurst(),
        finding_alert_at: Severity = Severity.HIGH,
        events_ledger: BudgetLedger | None = None,
        queue_size: int = 10_000,
    ) -> None:
        self.policy = policy if policy is not None and policy.enabled else None
        self.budgets = budgets
        self.alerts = alerts
        self.anomalies = anomalies
        self.error_burst = error_burst
        self.finding_alert_at = finding_alert_at
        self.events_ledger = events_ledger if events_ledger is not None else (budgets.ledger if budgets else None)
        self._detector = detector
        self._secrets: Detector | None = None
        self._detector_lock = threading.Lock()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, queue_size))
        self._lock = threading.Condition()
        self._pending: set[int] = set()
        self._results: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._errors: dict[str, deque[float]] = {}
        self.counters = {"processed": 0, "queue_full": 0, "blocked": 0, "anomalies": 0, "budget_events": 0}
        self._telemetries: list[Any] = []
        self._thread = threading.Thread(target=self._run, name="leanllm-guard", daemon=True)
        self._thread.start()

    # --- wiring ---------------------------------------------------------------------------------------------
    def attach(self, target: Any) -> Guard:
        """Install on a ``Telemetry``, a ``LeanLLMInstrumentor`` or a ``Pipeline`` (its instrumentor)."""
        telemetry = _telemetry_of(target)
        telemetry.install_gate(self)
        self._telemetries.append(telemetry)
        return self

    def detach(self) -> None:
        for telemetry in self._telemetries:
            telemetry.remove_gate(self)
        self._telemetries.clear()

    def wrap_exporter(self, exporter: SpanExporter, wait_s: float = 1.0) -> GuardExporter:
        """An exporter that adds this guard's conclusions to each span before ``exporter`` sees it."""
        return GuardExporter(exporter, self, wait_s)

    # --- detectors ------------------------------------------------------------------------------------------
    def detector(self) -> Detector:
        if self._detector is None:
            with self._detector_lock:
                if self._detector is None:
                    from leanllm_otel.processing.detectors import default_detector

                    self._detector = default_detector()
        return self._detector

    def secrets_detector(self) -> Detector:
        if self._secrets is None:
            with self._detector_lock:
                if self._secrets is None:
                    base = self._detector.config if self._detector is not None else DetectorConfig()
                    self._secrets = Detector(
                        DetectorConfig(allowlist=base.allowlist, enabled_categories=frozenset({SECRET}))
                    )
        return self._secrets

    # --- caller's thread ------------------------------------------------------------------------------------
    def admit(self, kwargs: Mapping[str, Any], stream: bool, attributes: Mapping[str, Any]) -> CallGuard | None:
        """At span start: the call's refusal, or what to keep for it (None: nothing)."""
        policy = resolve_policy(kwargs, self.policy)
        monitor: StreamMonitor | None = None
        if policy is not None:
            if policy.checks_prompt:
                violation = check_prompt(policy, self.detector(), kwargs)
                if violation is not None:
                    return _refusal(
                        violation,
                        {
                            sc.LEANLLM_SECURITY_FINDINGS: findings_text(dict.fromkeys(violation.findings, 1)),
                            sc.LEANLLM_SECURITY_FINDING_TYPES: list(violation.findings),
                        },
                    )
            if policy.checks_stream and stream:
                monitor = StreamMonitor(
                    self.detector(),
                    self.secrets_detector(),
                    stop_on_secret=policy.stop_stream_on_secret,
                    window_chars=policy.scan_window_chars,
                )
        reservations: tuple[Reservation, ...] = ()
        if self.budgets is not None and self.budgets.blocking:
            try:
                reservations = self.budgets.admit(call_labels(attributes))
            except LeanLLMBudgetExceeded as exc:
                return _refusal(exc, {sc.LEANLLM_BUDGET_EVENT: f"blocked:{exc.budget}"})
        if monitor is None and not reservations:
            return None
        return CallGuard(monitor, reservations)

    def call_ended(self, admission: Any, span: Any, exc: BaseException | None) -> None:
        """The call's span ended: hand its attributes to the guard thread."""
        context = span.get_span_context()
        reservations = admission.reservations if isinstance(admission, CallGuard) else ()
        item = (span.attributes, context.span_id, exc is not None, reservations)
        with self._lock:
            self._pending.add(context.span_id)
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self._pending.discard(context.span_id)
                self.counters["queue_full"] += 1
            if reservations and self.budgets is not None:
                self.budgets.release(reservations)

    # --- guard thread ---------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            attributes, span_id, failed, reservations = item
            result: dict[str, Any] = {}
            try:
                result = self._process(attributes or {}, failed, reservations)
            except Exception:
                log_internal_error("guardrail processing")
            finally:
                with self._lock:
                    self._pending.discard(span_id)
                    self._results[span_id] = result
                    while len(self._results) > 10_000:
                        self._results.popitem(last=False)
                    self.counters["processed"] += 1
                    self._lock.notify_all()

    def _process(self, attrs: Mapping[str, Any], failed: bool, reservations: Sequence[Reservation]) -> dict[str, Any]:
        labels = call_labels(attrs)
        model = str(attrs.get(sc.GEN_AI_REQUEST_MODEL) or attrs.get(sc.GEN_AI_RESPONSE_MODEL) or "")
        event_id = attrs.get(sc.LEANLLM_REQUEST_ID)
        out: dict[str, Any] = {}
        rows: list[dict[str, Any]] = []
        now = datetime.now(timezone.utc)
        blocked = bool(attrs.get(sc.LEANLLM_SECURITY_BLOCKED))
        reason = attrs.get(sc.LEANLLM_SECURITY_BLOCK_REASON)
        cost = span_cost(attrs)

        if blocked:
            self.counters["blocked"] += 1
            budget_event = str(attrs.get(sc.LEANLLM_BUDGET_EVENT) or "")
            if budget_event.startswith("blocked:"):
                name = budget_event.split(":", 1)[1]
                rows.append(event_row(now, "budget_blocked", name, None, model, event_id, None, None, {}))
                self._alert(
                    Alert(
                        BUDGET,
                        Severity.HIGH,
                        f"budget_blocked:{name}",
                        f"Budget {name} exhausted: a call to {model or 'an LLM'} was refused",
                        {"budget": name, "model": model},
                    )
                )
            else:
                types = list(attrs.get(sc.LEANLLM_SECURITY_FINDING_TYPES) or ())
                self._alert(
                    Alert(
                        BLOCKED,
                        Severity.HIGH,
                        f"blocked:{reason}",
                        f"Blocked by policy ({reason}) on {model or 'an LLM call'}",
                        {"reason": reason, "finding_types": ", ".join(types), "model": model, "event_id": event_id},
                    )
                )
        else:
            self.finding_alert(attrs, model, event_id)

        if self.budgets is not None and (cost or reservations):
            for event in self.budgets.settle(labels, cost or 0.0, reservations):
                self.counters["budget_events"] += 1
                rows.append(
                    event_row(
                        now,
                        f"budget_{event.kind}",
                        event.budget,
                        event.key,
                        model,
                        event_id,
                        event.spent_usd,
                        event.limit_usd,
                        {"window_s": event.window_s, "action": event.action},
                    )
                )
                self._alert(budget_alert(event, model))
                out[sc.LEANLLM_BUDGET_EVENT] = ",".join(
                    filter(None, [out.get(sc.LEANLLM_BUDGET_EVENT), f"{event.kind}:{event.budget}"])
                )

        if self.anomalies is not None and not blocked:
            metrics = {
                "latency_ms": number(attrs.get(sc.LEANLLM_LATENCY_MS)),
                "cost_usd": cost,
                "total_tokens": tokens_of(attrs),
            }
            found = self.anomalies.observe(model, labels, metrics, failed)
            if found:
                self.counters["anomalies"] += len(found)
                out[sc.LEANLLM_ANOMALIES] = sorted({a.kind for a in found})
            for anomaly in found:
                rows.append(
                    event_row(
                        now,
                        "anomaly",
                        anomaly.kind,
                        anomaly.key,
                        model,
                        event_id,
                        anomaly.value,
                        anomaly.baseline,
                        {"score": round(anomaly.score, 2)},
                    )
                )
                self._alert(
                    Alert(
                        ANOMALY,
                        Severity.MEDIUM if anomaly.kind != "error_rate_spike" else Severity.HIGH,
                        f"anomaly:{anomaly.kind}:{anomaly.key}",
                        f"{anomaly.kind} on {anomaly.key}: {anomaly.value:.4g} vs baseline "
                        f"{anomaly.baseline:.4g} ({anomaly.score:.1f} sigma)",
                        {
                            "model": model,
                            "value": anomaly.value,
                            "baseline": anomaly.baseline,
                            "score": round(anomaly.score, 2),
                            "event_id": event_id,
                        },
                    )
                )

        if failed and not blocked and self.error_burst is not None:
            self._error_burst(model, attrs.get(sc.ERROR_TYPE))

        if rows and self.events_ledger is not None:
            try:
                self.events_ledger.record_events(rows)
            except Exception:
                _logger.warning("leanllm-otel: guardrail events not stored", exc_info=True)
        return out

    def finding_alert(self, attrs: Mapping[str, Any], model: str, event_id: Any) -> None:
        severity_name = attrs.get(sc.LEANLLM_SECURITY_MAX_SEVERITY)
        types = attrs.get(sc.LEANLLM_SECURITY_FINDING_TYPES)
        if not severity_name or not types:
            return
        try:
            severity = Severity[str(severity_name)]
        except KeyError:
            return
        if severity < self.finding_alert_at:
            return
        names = sorted(str(t) for t in types)
        self._alert(
            Alert(
                FINDING,
                severity,
                f"finding:{','.join(names)}",
                f"{severity.name} security finding(s) {', '.join(names)} on {model or 'an LLM call'}",
                {"finding_types": ", ".join(names), "model": model, "event_id": event_id},
            )
        )

    def _error_burst(self, model: str, error_type: Any) -> None:
        burst = self.error_burst
        assert burst is not None
        now = time.monotonic()
        window = self._errors.setdefault(model, deque(maxlen=burst.threshold))
        window.append(now)
        if len(window) >= burst.threshold and now - window[0] <= burst.window_s:
            self._alert(
                Alert(
                    ERROR_BURST,
                    Severity.HIGH,
                    f"error_burst:{model}",
                    f"{len(window)} failed calls to {model or 'an LLM'} within {now - window[0]:.0f} s",
                    {"model": model, "last_error_type": str(error_type), "window_s": burst.window_s},
                )
            )
            window.clear()

    def _alert(self, alert: Alert) -> None:
        if self.alerts is not None:
            self.alerts.emit(alert)

    # --- results, lifecycle ---------------------------------------------------------------------------------
    def results_for(self, span_id: int, wait_s: float = 0.0) -> dict[str, Any]:
        """What the guard thread added for this span (waits up to ``wait_s`` while it is still queued)."""
        deadline = time.monotonic() + wait_s
        with self._lock:
            while span_id in self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            return dict(self._results.get(span_id, {}))

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued call is processed (and its alerts are handed to the dispatcher)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        if self.alerts is not None:
            return self.alerts.flush(max(0.0, deadline - time.monotonic()))
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Detach, process what is queued, stop the thread, close alerts and the ledger."""
        self.detach()
        self.flush(timeout_s)
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=1.0)
        self._thread.join(timeout_s)
        if self.alerts is not None:
            self.alerts.close(timeout_s)
        if self.budgets is not None:
            self.budgets.ledger.close()
        elif self.events_ledger is not None:
            self.events_ledger.close()


def _refusal(exc: LeanLLMGuardrailError, extra: Mapping[str, Any]) -> CallGuard:
    attributes = {sc.LEANLLM_SECURITY_BLOCKED: True, sc.LEANLLM_SECURITY_BLOCK_REASON: exc.reason, **extra}
    return CallGuard(None, (), exc, attributes)


def _telemetry_of(target: Any) -> Any:
    """The ``Telemetry`` of ``target`` (itself, an instrumentor's, or a pipeline's instrumentor's), duck-typed."""
    for candidate in (target, getattr(getattr(target, "instrumentor", target), "telemetry", None)):
        if callable(getattr(candidate, "install_gate", None)) and callable(getattr(candidate, "remove_gate", None)):
            return candidate
    raise ValueError("Guard.attach needs a Telemetry, an instrumented LeanLLMInstrumentor or a Pipeline")
