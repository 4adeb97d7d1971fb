"""Store faults: the application keeps working, lost events are counted, writing resumes after recovery."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import litellm
import pytest
from opentelemetry.sdk.trace import TracerProvider

import leanllm_otel
from leanllm_otel.config import LeanLLMConfig
from leanllm_otel.exporters.delivery import CircuitBreaker, RetryPolicy
from leanllm_otel.exporters.sql import SQLSpanExporter
from service_helpers import count_rows, read_rows

from .helpers import DropRecorder

MESSAGES = [{"role": "user", "content": "hi"}]

FAST_DELIVERY: dict[str, Any] = {
    "retry_max_attempts": 3,
    "retry_initial_backoff_ms": 50,
    "retry_total_budget_ms": 1000,
    "circuit_breaker_failure_threshold": 3,
    "circuit_breaker_recovery_timeout_ms": 200,
    "flush_interval_ms": 600_000,  # only explicit flushes: the test decides when a batch is attempted
    "export_timeout_ms": 2_000,
}


def _calls(n: int, tag: str) -> list[str]:
    """``n`` LiteLLM calls; each must give LiteLLM's own answer whatever the store is doing."""
    answers = []
    for i in range(n):
        response = litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response=f"{tag}-{i}")
        assert response.choices[0].message.content == f"{tag}-{i}"
        answers.append(response.id)
    return answers


@contextlib.contextmanager
def _pipeline(database_url: str | None = None, exporter: SQLSpanExporter | None = None,
              **overrides: Any) -> Iterator[tuple[leanllm_otel.Pipeline, DropRecorder]]:
    drops = DropRecorder()
    provider = TracerProvider()
    kwargs: dict[str, Any] = {**FAST_DELIVERY, **overrides}
    if exporter is not None:
        kwargs.update(exporters=[exporter], enable_persistence=False)
    else:
        kwargs["database_url"] = database_url
    pipe = leanllm_otel.configure(tracer_provider=provider, otlp=False, on_dropped_events=drops, **kwargs)
    try:
        yield pipe, drops
    finally:
        pipe.shutdown()
        provider.shutdown()


def _wait_breaker_closed_or_half_open(pipe: leanllm_otel.Pipeline) -> None:
    time.sleep(0.25)  # > recovery timeout: the next batch is a probe


# --- PostgreSQL down and back ---------------------------------------------------------------------------------


def test_postgres_stopped_mid_run_and_restarted(postgres_server: Any, postgres_url: str) -> None:
    with _pipeline(postgres_url) as (pipe, drops):
        _calls(5, "before")
        assert pipe.force_flush(20_000)
        assert count_rows(postgres_url) == 5

        postgres_server.stop(mode="immediate")
        try:
            started = time.monotonic()
            _calls(7, "outage")
            outage_calls_s = time.monotonic() - started
            pipe.force_flush(20_000)
            assert drops.total == 7, drops.calls  # every event of the outage counted as lost ...
            assert drops.reasons() <= {"retry_budget_exhausted", "circuit_open"}
        finally:
            postgres_server.start()
        _wait_breaker_closed_or_half_open(pipe)
        _calls(4, "after")
        assert pipe.force_flush(20_000)
        assert count_rows(postgres_url) == 9  # ... and writing resumed on fresh connections
        assert pipe.dropped_events_count == 7
        # the outage was invisible to the application: no call waited for the store (loose: < export timeout)
        assert outage_calls_s < 2.0


# --- SQLite locked by another writer ---------------------------------------------------------------------------


def _migrated_exporter(url: str, busy_ms: int, **overrides: Any) -> SQLSpanExporter:
    config = LeanLLMConfig(database_url=url, **{**FAST_DELIVERY, **overrides})
    exporter = SQLSpanExporter(
        config=config,
        sqlite_busy_timeout_ms=busy_ms,
        retry_policy=RetryPolicy.from_config(config),
        breaker=CircuitBreaker.from_config(config),
    )
    exporter.migrate(10.0)
    return exporter


def test_sqlite_locked_by_another_writer(sqlite_url: str) -> None:
    path = sqlite_url.removeprefix("sqlite:///")
    exporter = _migrated_exporter(sqlite_url, busy_ms=100)
    with _pipeline(exporter=exporter) as (pipe, drops):
        holder = sqlite3.connect(path, timeout=0, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            _calls(6, "locked")
            pipe.force_flush(10_000)
            assert drops.total == 6, drops.calls
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        _wait_breaker_closed_or_half_open(pipe)
        _calls(3, "unlocked")
        assert pipe.force_flush(10_000)
        assert count_rows(sqlite_url) == 3
        assert pipe.dropped_events_count == 6


def test_sqlite_lock_shorter_than_the_retry_budget_loses_nothing(sqlite_url: str) -> None:
    path = sqlite_url.removeprefix("sqlite:///")
    exporter = _migrated_exporter(sqlite_url, busy_ms=50, retry_total_budget_ms=5000, retry_max_attempts=10,
                                  circuit_breaker_failure_threshold=10)
    with _pipeline(exporter=exporter) as (pipe, drops):
        holder = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN EXCLUSIVE")
        release = threading.Timer(0.4, lambda: (holder.execute("ROLLBACK"), holder.close()))
        release.start()
        _calls(5, "briefly-locked")
        assert pipe.force_flush(10_000)
        release.join()
        assert drops.total == 0
        assert count_rows(sqlite_url) == 5


# --- read-only file and full disk (a tiny tmpfs when we may mount one, else injected at the driver) -------------


class SmallDisk:
    """A directory on its own tiny tmpfs (root) or, failing that, driver-level injection of the same errors."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "disk"
        self.dir.mkdir()
        self.mounted = (
            os.geteuid() == 0
            and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(self.dir)],
                               capture_output=True).returncode == 0
        )
        self._filler = self.dir / "filler"
        self._pragma: str | None = None
        self._exporter: SQLSpanExporter | None = None

    @property
    def url(self) -> str:
        return f"sqlite:///{self.dir / 'events.db'}"

    def install(self, exporter: SQLSpanExporter) -> None:
        """Without a mount: every new store connection runs ``self._pragma`` (set by the fault methods), on the
        engine's connections and on the file writer's (``store.sqlite_write``)."""
        if self.mounted:
            return
        from sqlalchemy import event

        def _inject(dbapi_connection: Any) -> None:
            if self._pragma:
                cursor = dbapi_connection.cursor()
                cursor.execute(self._pragma)
                cursor.close()

        async def _hook(engine: Any) -> None:
            @event.listens_for(engine.sync_engine, "connect")
            def _on_connect(dbapi_connection: Any, _record: Any) -> None:
                _inject(dbapi_connection)

            await engine.dispose()

        exporter.database.run(_hook, 10.0)
        writer = exporter._writer._sqlite
        assert writer is not None
        connected = writer._connected

        def _connected_with_fault() -> Any:
            fresh = writer._connection is None
            connection = connected()
            if fresh:
                _inject(connection)
            return connection

        writer._connected = _connected_with_fault  # type: ignore[method-assign]
        self._exporter = exporter
        exporter._writer.release_connections()

    def _set_pragma(self, pragma: str | None) -> None:
        self._pragma = pragma
        if self._exporter is not None:  # open connections do not run it: the next ones will
            self._exporter._writer.release_connections()

    def read_only(self, on: bool, exporter: SQLSpanExporter) -> None:
        if self.mounted:
            if on:  # close the store's connections first: a file system with open writers cannot turn read-only
                exporter._writer.release_connections()
            subprocess.run(["mount", "-o", f"remount,{'ro' if on else 'rw'}", str(self.dir)], check=True)
        else:
            self._set_pragma("PRAGMA query_only=1" if on else None)

    def fill(self) -> None:
        if self.mounted:
            with contextlib.suppress(OSError), open(self._filler, "wb", buffering=0) as handle:
                while True:
                    handle.write(b"\0" * 4096)
                    handle.flush()
        else:
            self._set_pragma("PRAGMA max_page_count=1")

    def free(self) -> None:
        if self.mounted:
            self._filler.unlink(missing_ok=True)
        else:
            self._set_pragma(None)

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.dir)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    disk = SmallDisk(tmp_path)
    try:
        yield disk
    finally:
        disk.close()


def test_read_only_store(small_disk: SmallDisk) -> None:
    exporter = _migrated_exporter(small_disk.url, busy_ms=100)
    small_disk.install(exporter)
    with _pipeline(exporter=exporter) as (pipe, drops):
        _calls(2, "writable")
        assert pipe.force_flush(10_000)
        small_disk.read_only(True, exporter)
        try:
            _calls(4, "read-only")
            pipe.force_flush(10_000)
            assert drops.total == 4, drops.calls
        finally:
            small_disk.read_only(False, exporter)
        _wait_breaker_closed_or_half_open(pipe)
        _calls(3, "writable-again")
        assert pipe.force_flush(10_000)
    assert count_rows(small_disk.url) == 5


def test_disk_full(small_disk: SmallDisk, caplog: pytest.LogCaptureFixture) -> None:
    exporter = _migrated_exporter(small_disk.url, busy_ms=100)
    small_disk.install(exporter)
    with _pipeline(exporter=exporter, capture_content=True, redaction_mode="full") as (pipe, drops):
        small_disk.fill()
        try:
            big = [{"role": "user", "content": "x" * 20_000}]
            for i in range(5):
                response = litellm.completion(model="gpt-4o-mini", messages=big, mock_response=f"full-{i}")
                assert response.choices[0].message.content == f"full-{i}"
            pipe.force_flush(10_000)
            assert drops.total == 5, drops.calls
            assert "database or disk is full" in caplog.text  # the fault we meant, not another one
        finally:
            small_disk.free()
        _wait_breaker_closed_or_half_open(pipe)
        _calls(3, "space-again")
        assert pipe.force_flush(10_000)
        assert pipe.dropped_events_count == 5
    assert count_rows(small_disk.url) == 3


# --- a store that answers slowly ---------------------------------------------------------------------------------


class SlowProxy:
    """TCP proxy to PostgreSQL that, while ``delay_s`` > 0, holds every server answer that long."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.delay_s = 0.0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            server = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, slow: bool) -> None:
        try:
            while not self._stop.is_set():
                data = source.recv(65536)
                if not data:
                    break
                if slow and self.delay_s:
                    time.sleep(self.delay_s)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


def test_slow_store_never_slows_the_application(postgres_server: Any, postgres_url: str) -> None:
    proxy = SlowProxy(postgres_server.port)
    slow_url = postgres_url.replace(f":{postgres_server.port}/", f":{proxy.port}/")
    try:
        with _pipeline(slow_url, export_timeout_ms=800, retry_max_attempts=2, retry_total_budget_ms=1500,
                       circuit_breaker_failure_threshold=5) as (pipe, drops):
            _calls(3, "fast")
            assert pipe.force_flush(20_000)
            proxy.delay_s = 2.0
            flushing = threading.Thread(target=pipe.force_flush, args=(20_000,))
            _calls(4, "slow")
            flushing.start()  # the export thread is now stuck on the slow store ...
            time.sleep(0.2)
            started = time.monotonic()
            _calls(20, "meanwhile")  # ... while the application carries on
            meanwhile_s = time.monotonic() - started
            flushing.join(30)
            assert meanwhile_s < 1.5  # loose: twenty in-memory calls, nowhere near one slow store answer
            assert drops.total >= 4 and drops.reasons() <= {"retry_budget_exhausted", "circuit_open"}
            lost = drops.total
            proxy.delay_s = 0.0
            _wait_breaker_closed_or_half_open(pipe)
            _calls(2, "recovered")
            assert pipe.force_flush(20_000)
        stored = read_rows(postgres_url)
        assert len(stored) + lost == 3 + 4 + 20 + 2  # every event either stored or counted
    finally:
        proxy.close()
