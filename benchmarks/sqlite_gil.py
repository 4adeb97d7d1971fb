"""Why the SQL store writes multi-row INSERTs with literal NULLs (``exporters/insert.py``), measured.

    .venv/bin/python benchmarks/sqlite_gil.py [--rows 20000] [--busy-rows 400]

Writes the same rows into the real event table (``exporters/schema.py``, all indexes) with plain ``sqlite3`` three
ways, each alone and next to an application thread that keeps the GIL busy (Python work with a short GIL-releasing
call every ~30 us, as LiteLLM's id generation does):

- ``executemany``: one bound row at a time (``sqlite3`` releases the GIL for each row's step and must take it back),
- ``multi-row``: up to 500 rows per ``INSERT ... VALUES (...), (...)``, every column bound,
- ``multi-row + NULL``: the same, with the columns no row sets written as literal ``NULL`` (what the store does).

Prints microseconds per row and the ratio to ``executemany`` alone. Rows look like a metadata-mode chat event:
~30 of the ~60 columns set. The statements come from the store's own ``PreparedInsert``.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.dialects import sqlite

from leanllm_otel.event import row_defaults
from leanllm_otel.store.insert import PreparedInsert
from leanllm_otel.store.schema import events, metadata

ROWS_PER_STATEMENT = 500


def _database() -> sqlite3.Connection:
    path = f"{tempfile.mkdtemp(prefix='leanllm-gil-')}/events.db"
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    engine.dispose()
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def _sparse_rows(count: int) -> list[dict[str, Any]]:
    """The fields a metadata-mode chat span sets (the rest of the ~60 columns keep their defaults)."""
    now = datetime.now(timezone.utc)
    return [
        {
            "event_id": str(uuid.uuid4()), "trace_id": uuid.uuid4().hex, "span_id": uuid.uuid4().hex[:16],
            "timestamp": now, "end_timestamp": now, "recorded_at": now, "operation": "chat", "provider": "openai",
            "model": "gpt-4o-mini", "response_model": "gpt-4o-mini-2024-07-18", "response_id": "chatcmpl-1",
            "finish_reasons": ["stop"], "server_address": "127.0.0.1", "server_port": 8080, "input_tokens": 120,
            "output_tokens": 45, "total_tokens": 165, "usage_reported": True, "cost": 4.5e-05, "latency_ms": 830.0,
            "labels": {"feature": "search"}, "metadata": {"environment": "bench"}, "environment": "bench",
            "correlation_id": f"req-{i // 10}", "parameters": {"temperature": 0.2}, "status": "ok",
            "redaction_mode": "metadata", "sampling_rate": 1.0, "input_message_count": 1,
        }
        for i in range(count)
    ]


def _statements(rows: list[dict[str, Any]], how: str) -> list[tuple[str, Sequence[Any]]]:
    prepared = PreparedInsert(sqlite.dialect())
    if how == "multi-row + NULL":
        return prepared.statements(rows)  # what the store does
    full = [{**dict.fromkeys(events.c.keys()), **row_defaults(), **row} for row in rows]
    if how == "multi-row":
        return prepared.statements(full)  # every column of every row bound
    per_row = [prepared.statements([row])[0][1] for row in full]
    return [(prepared.sql, per_row)]  # one statement, executemany over its rows


def _write(connection: sqlite3.Connection, statements: list[tuple[str, Sequence[Any]]], how: str) -> None:
    connection.execute("BEGIN")
    for sql, parameters in statements:
        if how == "executemany":
            connection.executemany(sql, parameters)
        else:
            connection.execute(sql, parameters)
    connection.execute("COMMIT")


def _busy(stop: threading.Event) -> None:
    """An application thread: Python work, and now and then a call that releases the GIL for a moment (here
    ``uuid.uuid4()``, whose ``os.urandom`` does; LiteLLM makes such ids on every call and stream chunk)."""
    total = 0
    while not stop.is_set():
        for i in range(1000):
            total += i
        uuid.uuid4()


def measure(how: str, count: int, busy: bool) -> float:
    connection = _database()
    batches = [_statements(_sparse_rows(min(1000, count - start)), how) for start in range(0, count, 1000)]
    stop = threading.Event()
    spinner = threading.Thread(target=_busy, args=(stop,), daemon=True)
    if busy:
        spinner.start()
    started = time.perf_counter()
    for statements in batches:
        _write(connection, statements, how)
    elapsed = time.perf_counter() - started
    stop.set()
    if busy:
        spinner.join()
    connection.close()
    return elapsed / count * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--busy-rows", type=int, default=400, help="rows for the busy runs (executemany is slow)")
    args = parser.parse_args(argv)
    print(f"sqlite {sqlite3.sqlite_version}, {len(events.c)} columns, {len(_sparse_rows(1)[0])} set; us per row")
    print(f"{'write':<18} {'alone':>9} {'busy thread':>12}  {'ratio alone':>11} {'ratio busy':>10}")
    baseline: dict[bool, float] = {}
    for how in ("executemany", "multi-row", "multi-row + NULL"):
        alone = measure(how, args.rows, busy=False)
        busy = measure(how, args.busy_rows, busy=True)
        baseline.setdefault(False, alone)
        baseline.setdefault(True, busy)
        print(f"{how:<18} {alone:>9.1f} {busy:>12.1f}  {alone / baseline[False]:>11.2f} {busy / baseline[True]:>10.3f}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
