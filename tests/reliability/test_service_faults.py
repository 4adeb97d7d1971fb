"""Service faults: refused, 5xx, 429 + Retry-After, hang, garbage and huge answers, TLS failures.

Each scenario checks the retry budget holds (a batch is given up within it), the circuit breaker opens on a dead
service and closes when it answers again, and every event given up on is counted through ``on_dropped_events``.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.exporters.service import LeanLLMServiceExporter
from service_helpers import FaultServer, Reply, free_port, make_spans

from .helpers import DropRecorder

TOKEN = "lllm_reliability"


def _exporter(endpoint: str, drops: DropRecorder, **overrides: Any) -> LeanLLMServiceExporter:
    settings: dict[str, Any] = {
        "retry_max_attempts": 4,
        "retry_initial_backoff_ms": 50,
        "retry_total_budget_ms": 1500,
        "export_timeout_ms": 1000,
        "circuit_breaker_failure_threshold": 50,
        "circuit_breaker_recovery_timeout_ms": 300,
        **overrides,
    }
    config = LeanLLMConfig(endpoint=endpoint, leanllm_api_key=TOKEN, **settings)
    return LeanLLMServiceExporter(config=config, on_dropped_events=drops)


def _spans(prefix: str, n: int = 3) -> Any:
    return [s for s in make_spans([f"{prefix}-{i}" for i in range(n)]) if s.name.startswith("chat")]


@pytest.fixture
def fault() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def _timed_export(exporter: LeanLLMServiceExporter, spans: Any) -> tuple[SpanExportResult, float]:
    started = time.monotonic()
    result = exporter.export(spans)
    return result, time.monotonic() - started


def test_connection_refused_within_budget_and_breaker_cycle() -> None:
    drops = DropRecorder()
    exporter = _exporter(f"http://127.0.0.1:{free_port()}", drops, circuit_breaker_failure_threshold=3)
    try:
        result, elapsed = _timed_export(exporter, _spans("refused"))
        assert result is SpanExportResult.FAILURE
        assert elapsed < 1.5 + 1.0  # the retry budget holds (slack for scheduling)
        assert drops.total == 3
        assert exporter.breaker.state == "open"
        sent = exporter.requests_sent
        result, elapsed = _timed_export(exporter, _spans("while-open"))
        assert exporter.requests_sent == sent  # an open circuit does not hammer the dead backend
        assert drops.total == 6 and "circuit_open" in drops.reasons()
        assert elapsed < 0.5
    finally:
        exporter.shutdown()


def test_5xx_then_recovery_delivers_everything(fault: FaultServer) -> None:
    fault._script.extend([Reply(status=503), Reply(status=500), Reply(status=502)])
    drops = DropRecorder()
    exporter = _exporter(fault.url, drops)
    try:
        result, _ = _timed_export(exporter, _spans("5xx"))
        assert result is SpanExportResult.SUCCESS
        assert drops.total == 0
        assert [len(r.events) for r in fault.requests] == [3, 3, 3, 3]
        assert exporter.accepted_events_count == 3
    finally:
        exporter.shutdown()


def test_429_retry_after_is_honoured_inside_the_budget(fault: FaultServer) -> None:
    fault._script.extend([Reply(status=429, headers={"Retry-After": "1"})])
    drops = DropRecorder()
    exporter = _exporter(fault.url, drops, retry_total_budget_ms=3000)
    try:
        result, _ = _timed_export(exporter, _spans("429"))
        assert result is SpanExportResult.SUCCESS
        first, second = fault.requests
        assert second.at - first.at >= 0.95  # waited as told
        # A Retry-After longer than the whole budget is not waited for: the batch is dropped at once, counted.
        fault._script.extend([Reply(status=429, headers={"Retry-After": "60"})])
        result, elapsed = _timed_export(exporter, _spans("429-long"))
        assert result is SpanExportResult.FAILURE
        assert elapsed < 1.0
        assert drops.total == 3 and drops.reasons() == {"retry_budget_exhausted"}
    finally:
        exporter.shutdown()


def test_server_that_accepts_then_hangs(fault: FaultServer) -> None:
    fault._default = Reply(delay=30.0)
    drops = DropRecorder()
    exporter = _exporter(fault.url, drops, export_timeout_ms=300, retry_max_attempts=3, retry_total_budget_ms=1200)
    try:
        result, elapsed = _timed_export(exporter, _spans("hang"))
        assert result is SpanExportResult.FAILURE
        assert elapsed < 1.2 + 0.3 + 1.0  # budget + one request timeout + slack; never the server's 30 s
        assert drops.total == 3
    finally:
        fault._stop.set()
        exporter.shutdown()


@pytest.mark.parametrize(
    "body",
    [b"<html>not json</html>", b"\xff\xfe\x00garbage", b'{"accepted": "many"}', b"[1,2,3]", b" " * 5_000_000],
    ids=["html", "binary", "wrong-types", "array", "huge"],
)
def test_garbage_or_huge_answer_is_neither_resent_nor_fatal(fault: FaultServer, body: bytes) -> None:
    fault._default = Reply(status=200, body=body)
    drops = DropRecorder()
    exporter = _exporter(fault.url, drops)
    try:
        result = exporter.export(_spans("garbage"))
        assert result is SpanExportResult.SUCCESS  # the service took it: sending it again would duplicate
        assert len(fault.requests) == 1
        assert drops.total == 0
    finally:
        exporter.shutdown()


def test_breaker_opens_then_closes_when_the_service_returns(fault: FaultServer) -> None:
    fault._default = Reply(status=503)
    drops = DropRecorder()
    exporter = _exporter(fault.url, drops, retry_max_attempts=1, circuit_breaker_failure_threshold=2)
    try:
        exporter.export(_spans("a"))
        exporter.export(_spans("b"))
        assert exporter.breaker.state == "open"
        seen = len(fault.requests)
        exporter.export(_spans("c"))
        assert len(fault.requests) == seen
        fault._default = Reply()
        time.sleep(0.35)  # recovery timeout: the next batch is a probe
        assert exporter.breaker.state == "half_open"
        assert exporter.export(_spans("d")) is SpanExportResult.SUCCESS
        assert exporter.breaker.state == "closed"
        assert drops.total == 9
        assert [e["event_id"] for e in fault.requests[-1].events] == ["d-0", "d-1", "d-2"]
    finally:
        exporter.shutdown()


# --- TLS ----------------------------------------------------------------------------------------------------------


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class TLSServer:
    """Loopback TLS listener with a self-signed certificate; counts handshakes attempted."""

    def __init__(self, tmp: Path) -> None:
        cert, key = _self_signed(tmp)
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert, key)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.handshakes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            self.handshakes += 1
            conn.settimeout(2.0)
            try:
                with self._context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._listener.close()


def test_untrusted_tls_certificate_is_a_counted_failure(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = TLSServer(tmp_path)
    drops = DropRecorder()
    exporter = _exporter(f"https://127.0.0.1:{server.port}", drops, retry_max_attempts=2,
                         circuit_breaker_failure_threshold=2)
    try:
        result, elapsed = _timed_export(exporter, _spans("tls"))
        assert result is SpanExportResult.FAILURE
        assert server.handshakes >= 1  # it did try, and refused the certificate
        assert drops.total == 3
        assert elapsed < 1.5 + 1.0
        assert exporter.breaker.state == "open"
        assert TOKEN not in caplog.text  # the token never left over an untrusted channel, nor into logs
    finally:
        exporter.shutdown()
        server.close()
