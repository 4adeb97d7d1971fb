"""``LeanLLMServiceExporter``: LLM spans -> ``POST {endpoint}/v1/events`` on the LeanLLM service.

The same protocol is spoken by the self-hostable ingest service (``leanllm-otel serve``). One request carries
``{"events": [LLMEvent.to_payload(), ...]}`` with ``Authorization: Bearer <LEANLLM_API_KEY>``; the answer is
``{"accepted": n, "dropped": m}``. Retries, the circuit breaker and drop accounting live in
:mod:`leanllm_otel.exporters.delivery`; this module only turns HTTP outcomes into ``RetryableError``
(connection errors, timeouts, 408/429/5xx, honouring ``Retry-After``) or ``PermanentError`` (other 4xx), and
splits batches that are too large for one request (by bytes, by count, and on a 413 answer).

The token lives in a ``SecretStr`` and is put only into the request's ``Authorization`` header. This module
never logs headers, and any text that comes back from the server is scrubbed of the token before it is logged
or used as a drop reason.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import logging
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from pydantic import SecretStr

from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.config_text import check_http_url
from leanllm_otel.event import is_llm_span_attributes, span_to_event
from leanllm_otel.exporters.delivery import (
    REASON_SHUTDOWN,
    CircuitBreaker,
    Delivery,
    DropCounter,
    PermanentError,
    RetryableError,
    RetryPolicy,
)
from leanllm_otel.repair import repair, with_repair_finding
from leanllm_otel.sensitive import forms, mask_url, scrub
from leanllm_otel.version import __version__

__all__ = [
    "DEFAULT_GZIP_THRESHOLD_BYTES",
    "DEFAULT_MAX_EVENTS_PER_REQUEST",
    "DEFAULT_MAX_REQUEST_BYTES",
    "EVENTS_PATH",
    "REASON_REJECTED_BY_SERVICE",
    "REASON_SERIALIZATION",
    "REASON_TOO_LARGE",
    "LeanLLMServiceExporter",
    "parse_retry_after",
]

_logger = logging.getLogger(__name__)

EVENTS_PATH = "/v1/events"
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_EVENTS_PER_REQUEST = 1000
DEFAULT_GZIP_THRESHOLD_BYTES = 64 * 1024

REASON_REJECTED_BY_SERVICE = "rejected_by_service"
REASON_TOO_LARGE = "payload_too_large"
REASON_SERIALIZATION = "serialization_error"

_RETRYABLE_STATUS = frozenset({408, 429})
_MAX_REASON_CHARS = 200
_MAX_RETRY_AFTER_S = 3600.0
_BODY_PREFIX = b'{"events":['
_BODY_SUFFIX = b"]}"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date); None if absent/invalid."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return min(float(text), _MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    delta = (when - (now or datetime.now(timezone.utc))).total_seconds()
    return min(max(0.0, delta), _MAX_RETRY_AFTER_S)


def _check_endpoint(endpoint: str) -> str:
    try:
        check_http_url(endpoint)  # the one rule for http URLs, as LEANLLM_ENDPOINT is checked
    except ValueError as exc:
        raise ValueError(f"LeanLLM endpoint must be an http:// or https:// URL: {exc}") from None
    return endpoint.rstrip("/")


@dataclass
class _Outcome:
    """What one request attempt learned beyond success/failure (set from inside the attempt closure)."""

    too_large: bool = False


class LeanLLMServiceExporter(SpanExporter):
    """Exports LLM spans as ``LLMEvent`` payloads to the LeanLLM service (or ``leanllm-otel serve``).

    With no arguments everything comes from :meth:`LeanLLMConfig.from_env` (``LEANLLM_ENDPOINT``,
    ``LEANLLM_API_KEY``, ``LEANLLM_EXPORT_TIMEOUT_MS``, ``LEANLLM_RETRY_*``, ``LEANLLM_CIRCUIT_BREAKER_*``).
    ``endpoint`` and ``api_key`` override the configuration. ``on_dropped_events(count, reason)`` is called
    for every dropped batch (after retries, circuit open, rejection by the service, ...); ``drops=`` shares a
    counter with other components. Spans that are not LLM spans (no ``leanllm.request_id``) are ignored.
    Wrap it in a ``BatchSpanProcessor``. A value JSON cannot carry (a lone surrogate) is replaced with U+FFFD and
    counted under ``REPAIRED_VALUE`` in the event's findings; the event is sent.
    """

    repairs_values: ClassVar[bool] = True

    def __init__(
        self,
        endpoint: str | None = None,
        api_key: str | SecretStr | None = None,
        *,
        config: LeanLLMConfig | None = None,
        on_dropped_events: Callable[[int, str], None] | None = None,
        drops: DropCounter | None = None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        max_events_per_request: int = DEFAULT_MAX_EVENTS_PER_REQUEST,
        gzip_threshold_bytes: int = DEFAULT_GZIP_THRESHOLD_BYTES,
    ) -> None:
        cfg = config if config is not None else LeanLLMConfig.from_env()
        self._endpoint = _check_endpoint(endpoint if endpoint is not None else cfg.endpoint)
        self._url = self._endpoint + EVENTS_PATH
        key = api_key if api_key is not None else cfg.leanllm_api_key
        self._token: SecretStr | None = SecretStr(key) if isinstance(key, str) else key
        if self._token is not None and not self._token.get_secret_value().strip():
            raise ValueError("LeanLLM api_key is blank")
        if self._token is None:
            _logger.warning(
                "leanllm-otel service exporter: no LEANLLM_API_KEY; requests to %s go without a token",
                self._endpoint,
            )
        self._max_request_bytes = max(1024, int(max_request_bytes))
        self._max_events = max(1, int(max_events_per_request))
        self._gzip_threshold = max(0, int(gzip_threshold_bytes))

        self.drops = drops if drops is not None else DropCounter()
        """Dropped events by reason (``drops.total``, ``drops.by_reason()``); may be shared via ``drops=``."""
        if on_dropped_events is not None:
            self.drops.add_callback(on_dropped_events)
        self._delivery = Delivery("service", RetryPolicy.from_config(cfg), CircuitBreaker.from_config(cfg), self.drops)
        timeout_s = cfg.export_timeout_ms / 1000.0
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            follow_redirects=False,  # a redirect must never carry the token elsewhere
            headers={"User-Agent": f"leanllm-otel/{__version__}"},
        )
        self._lock = threading.Lock()
        self._shutdown = False
        self._accepted = 0
        self._requests = 0

    # --- public surface ------------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def breaker(self) -> CircuitBreaker:
        """The circuit breaker guarding the service (``breaker.state``)."""
        return self._delivery.breaker

    @property
    def dropped_events_count(self) -> int:
        return self.drops.total

    @property
    def accepted_events_count(self) -> int:
        """Events the service reported as accepted."""
        with self._lock:
            return self._accepted

    @property
    def requests_sent(self) -> int:
        """HTTP requests attempted (retries included)."""
        with self._lock:
            return self._requests

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={mask_url(self._endpoint)!r})"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        parts: list[bytes] = []
        failed = 0
        for span in spans:
            if not is_llm_span_attributes(span.attributes):
                continue
            try:
                parts.append(_encode(span_to_event(span).to_payload()))
            except Exception as exc:  # one bad span must not sink the batch
                failed += 1
                _logger.warning("leanllm-otel service exporter: cannot serialise a span (%s)", type(exc))
        if failed:
            self.drops.add(failed, REASON_SERIALIZATION)
        if not parts:
            return SpanExportResult.FAILURE if failed else SpanExportResult.SUCCESS
        if self._shutdown:
            self.drops.add(len(parts), REASON_SHUTDOWN)
            return SpanExportResult.FAILURE
        ok = failed == 0
        for chunk in self._chunks(parts):
            ok = self._send_chunk(chunk) and ok
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True  # nothing is buffered here; the batch processor owns the queue

    def shutdown(self) -> None:
        """Stop retrying (interrupts backoff sleeps) and close the client; bounded by one request timeout."""
        if self._shutdown:
            return
        self._shutdown = True
        self._delivery.close()
        self._client.close()

    # --- batching ------------------------------------------------------------------------------------------

    def _chunks(self, parts: list[bytes]) -> list[list[bytes]]:
        overhead = len(_BODY_PREFIX) + len(_BODY_SUFFIX)
        chunks: list[list[bytes]] = []
        current: list[bytes] = []
        size = overhead
        for part in parts:
            extra = len(part) + (1 if current else 0)
            if current and (size + extra > self._max_request_bytes or len(current) >= self._max_events):
                chunks.append(current)
                current, size, extra = [], overhead, len(part)
            current.append(part)
            size += extra
        if current:
            chunks.append(current)
        return chunks

    def _send_chunk(self, chunk: list[bytes]) -> bool:
        body = _BODY_PREFIX + b",".join(chunk) + _BODY_SUFFIX
        outcome = _Outcome()
        delivered = self._delivery.send(lambda: self._post(body, outcome), len(chunk))
        if not outcome.too_large:
            return delivered
        if len(chunk) == 1:
            _logger.warning(
                "leanllm-otel service exporter: one event of %d bytes is larger than the service accepts",
                len(body),
            )
            self.drops.add(1, REASON_TOO_LARGE)
            return False
        # Learn the service's limit so later batches are cut small enough up front.
        self._max_request_bytes = max(1024, min(self._max_request_bytes, len(body) // 2))
        middle = len(chunk) // 2
        first = self._send_chunk(chunk[:middle])
        second = self._send_chunk(chunk[middle:])
        return first and second

    # --- one HTTP attempt ----------------------------------------------------------------------------------

    def _post(self, body: bytes, outcome: _Outcome) -> None:
        """One attempt; raises RetryableError / PermanentError for Delivery, or returns (success or 413)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._token is not None:
            headers["Authorization"] = "Bearer " + self._token.get_secret_value()
        if len(body) > self._gzip_threshold:
            body = gzip.compress(body, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        with self._lock:
            self._requests += 1
        # Errors are raised after the except blocks so they carry no __context__: httpx exceptions hold the
        # request, and the request holds the Authorization header.
        failure: Exception | None = None
        response: httpx.Response | None = None
        try:
            response = self._client.post(self._url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            failure = RetryableError(f"timeout ({type(exc).__name__})")
        except httpx.TransportError as exc:
            _logger.debug("leanllm-otel service exporter: %s: %s", type(exc).__name__, self._scrub(str(exc)))
            failure = RetryableError(f"connection_error ({type(exc).__name__})")
        except RuntimeError:  # the client was closed by shutdown() while this attempt ran
            failure = PermanentError(REASON_SHUTDOWN)
        del headers
        if failure is not None:
            raise failure
        assert response is not None
        self._handle(response, outcome)

    def _handle(self, response: httpx.Response, outcome: _Outcome) -> None:
        status = response.status_code
        if 200 <= status < 300:
            self._on_success(response)
            return
        if status == 413:
            outcome.too_large = True
            return
        if status in _RETRYABLE_STATUS or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise RetryableError(f"http_{status}", retry_after)
        reason = self._server_reason(response)
        _logger.error("leanllm-otel service exporter: %s answered %d: %s", mask_url(self._url), status, reason)
        raise PermanentError(f"http_{status}: {reason}" if reason else f"http_{status}")

    def _on_success(self, response: httpx.Response) -> None:
        try:
            answer = response.json()
            accepted = int(answer.get("accepted", 0))
            dropped = int(answer.get("dropped", 0))
        except (ValueError, TypeError, AttributeError):
            # The service took the request; an unreadable answer must not make us send it again.
            _logger.warning(
                "leanllm-otel service exporter: unreadable answer (HTTP %d): %r",
                response.status_code,
                self._scrub(response.text[:_MAX_REASON_CHARS]),
            )
            return
        with self._lock:
            self._accepted += max(0, accepted)
        if dropped > 0:
            _logger.warning("leanllm-otel service exporter: the service dropped %d event(s)", dropped)
            self.drops.add(dropped, REASON_REJECTED_BY_SERVICE)

    def _server_reason(self, response: httpx.Response) -> str:
        text = ""
        try:
            answer: Any = response.json()
        except ValueError:
            text = response.text
        else:
            if isinstance(answer, dict):
                for key in ("reason", "error", "detail", "message"):
                    if isinstance(answer.get(key), str):
                        text = answer[key]
                        break
                else:
                    text = json.dumps(answer)
            else:
                text = str(answer)
        text = " ".join(text.split())[:_MAX_REASON_CHARS]
        return self._scrub(text) or (response.reason_phrase or "")

    def _scrub(self, text: str) -> str:
        if self._token is None:
            return scrub(text)
        return scrub(text, forms(self._token.get_secret_value()), marker="***")


def _encode(payload: dict[str, Any]) -> bytes:
    try:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:  # NaN / infinity somewhere: strict JSON has no spelling for them
        text = json.dumps(_finite(payload), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: UTF-8 has no spelling for it, the event is kept repaired
        repaired, count = repair(payload)
        repaired["findings"] = with_repair_finding(repaired.get("findings") or {}, count)
        return _encode(repaired)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
