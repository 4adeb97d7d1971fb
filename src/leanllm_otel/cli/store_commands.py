"""Store commands: ``logs``, ``show``, ``stats``, ``migrate``, ``tail``.

Human output is aligned tables; ``--json`` prints JSON lines (one event or group per line).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from leanllm_otel.cli import CLIError, add_database_option, print_json_line, print_table, resolve_database_url
from leanllm_otel.cli.event_tables import LOG_HEADERS, STATS_HEADERS, log_row, print_events, show_text, stats_row
from leanllm_otel.event import LLMEvent
from leanllm_otel.event_filter import parse_time as _parse_time
from leanllm_otel.store.engine import head_revision
from leanllm_otel.store.queries import EventFilter, EventStore, ScoreFilter, StoreError
from leanllm_otel.textsafe import one_line

# --- argument parsing ----------------------------------------------------------------------------------------


def parse_time(text: str) -> datetime:
    """ISO 8601 (``2025-01-31``, ``2025-01-31T12:00:00Z``; naive = UTC) or relative to now (``30m``, ``2h``, ``7d``)."""
    try:
        return _parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _score_filter(text: str) -> ScoreFilter:
    try:
        return ScoreFilter.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"invalid label {text!r}: expected KEY=VALUE")
    return key.strip(), value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--correlation-id", metavar="ID", help="only events of this correlation id")
    parser.add_argument("--model", help="only events for this (request) model")
    parser.add_argument(
        "--label",
        action="append",
        type=parse_label,
        default=[],
        metavar="KEY=VALUE",
        help="only events with this label (repeatable; all must match)",
    )
    parser.add_argument("--since", type=parse_time, metavar="TIME", help="start time, ISO 8601 or age (30m, 2h, 7d)")
    parser.add_argument("--until", type=parse_time, metavar="TIME", help="end time (exclusive), same forms")
    parser.add_argument("--errors", action="store_true", help="only failed calls")
    parser.add_argument("--provider", help="only events of this provider (openai, anthropic, ...)")
    parser.add_argument("--user", metavar="ID", help="only events of this user id")
    parser.add_argument("--session", metavar="ID", help="only events of this session id")
    parser.add_argument("--min-cost", type=_positive_float, metavar="USD", help="only calls costing at least this")
    parser.add_argument("--min-latency-ms", type=_positive_float, metavar="MS", help="only calls at least this slow")
    parser.add_argument("--search", metavar="WORDS", help="only events whose stored content has every word")
    parser.add_argument(
        "--score",
        type=_score_filter,
        metavar="FILTER",
        help="only scored events: NAME, NAME=VALUE or NAME>=NUMBER (also <, <=, >, !=)",
    )


def _event_filter(args: argparse.Namespace) -> EventFilter:
    return EventFilter(
        correlation_id=args.correlation_id,
        model=args.model,
        labels=dict(args.label),
        since=args.since,
        until=args.until,
        errors_only=args.errors,
        provider=args.provider,
        user_id=args.user,
        session_id=args.session,
        min_cost=args.min_cost,
        min_latency_ms=args.min_latency_ms,
        text=args.search,
        score=args.score,
    )


def _criteria(args: argparse.Namespace) -> dict[str, Any]:
    return {"event_filter": _event_filter(args)}


def _open_store(args: argparse.Namespace) -> EventStore:
    try:
        return EventStore(resolve_database_url(args))
    except StoreError as exc:  # only a malformed URL fails here: a usage error
        raise CLIError(str(exc), code=2) from None


# --- commands ------------------------------------------------------------------------------------------------


def _cmd_logs(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        events = _query(lambda: store.list_events(limit=args.limit, offset=args.offset, **_criteria(args)))
    print_events(events, args.json)
    return 0


def _query(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except StoreError as exc:
        raise CLIError(str(exc)) from None


def _cmd_show(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        event = _query(lambda: store.get_event(args.event_id))
    if event is None:
        raise CLIError(f"event {args.event_id!r} not found")
    if args.json:
        print_json_line(event.to_payload())
    else:
        sys.stdout.write(show_text(event))
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        stats = _query(lambda: store.stats(**_criteria(args)))
    if args.json:
        print_json_line({"group": "total", **stats.total.to_dict()})
        for group in stats.by_model:
            print_json_line({"group": "model", **group.to_dict()})
        for group in stats.by_label:
            print_json_line({"group": "label", **group.to_dict()})
        return 0
    right = range(1, len(STATS_HEADERS))
    print_table(STATS_HEADERS, [stats_row(stats.total)], right_align=right)
    if stats.by_model:
        sys.stdout.write("\nby model\n")
        print_table(STATS_HEADERS, [stats_row(g) for g in stats.by_model], right_align=right)
    if stats.by_label:
        sys.stdout.write("\nby label\n")
        print_table(STATS_HEADERS, [stats_row(g) for g in stats.by_label], right_align=right)
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        before = _query(store.current_revision)
        after = _query(lambda: store.migrate(args.revision))
        masked = store.masked_url
    if before == after:
        sys.stdout.write(f"{masked}: already at revision {after}\n")
    else:
        sys.stdout.write(f"{masked}: upgraded {before or '(empty)'} -> {after}\n")
    return 0


_TAIL_FORMAT = "{0:<19}  {1:<36}  {2:<22}  {3:<16}  {4:>13}  {5:>11}  {6:>8}  {7}"


def _tail_line(cells: Sequence[str]) -> str:
    # Fixed widths: rows arrive over time, so the table cannot be measured first.
    return _TAIL_FORMAT.format(*(one_line(cell) for cell in cells)).rstrip() + "\n"


def _cmd_tail(args: argparse.Namespace) -> int:
    """Print the last ``--lines`` events, then follow newly stored ones (polling ``recorded_at``)."""
    overlap = timedelta(seconds=5)  # rows committed slightly after their recorded_at; clock skew
    deadline = None if args.max_seconds is None else time.monotonic() + args.max_seconds
    limit = args.count
    criteria = _criteria(args)
    event_filter = criteria["event_filter"]
    printed = 0

    def emit(events: Sequence[LLMEvent]) -> None:
        nonlocal printed
        if limit is not None:
            events = events[: max(0, limit - printed)]
        for event in events:
            if args.json:
                print_json_line(event.to_payload())
            else:
                sys.stdout.write(_tail_line(log_row(event)))
        printed += len(events)
        sys.stdout.flush()

    with _open_store(args) as store:
        watermark = datetime.now(timezone.utc)
        # Whatever was stored before we started is history (shown by --lines only), not "new".
        history = _query(lambda: store.recorded_since(watermark - overlap, event_filter=event_filter))
        seen = {event.event_id: recorded_at for recorded_at, event in history}
        if not args.json:
            sys.stdout.write(_tail_line(LOG_HEADERS))
        if args.lines:
            initial = _query(lambda: store.list_events(limit=args.lines, **criteria))
            initial.reverse()
            emit(initial)
            seen.update((event.event_id, watermark) for event in initial)
        while limit is None or printed < limit:
            if deadline is not None and time.monotonic() >= deadline:
                break
            after = watermark - overlap
            batch = _query(lambda: store.recorded_since(after, event_filter=event_filter))  # noqa: B023
            emit([event for _, event in batch if event.event_id not in seen])
            for recorded_at, event in batch:
                seen[event.event_id] = recorded_at
                watermark = max(watermark, recorded_at)
            for event_id in [k for k, v in seen.items() if v < watermark - 2 * overlap]:
                del seen[event_id]
            if limit is not None and printed >= limit:
                break
            pause = args.interval if deadline is None else min(args.interval, deadline - time.monotonic())
            time.sleep(max(0.0, pause))
    return 0


# --- registration --------------------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    """Add ``logs``, ``show``, ``stats``, ``migrate`` and ``tail`` to the ``leanllm-otel`` parser."""
    logs = subparsers.add_parser("logs", help="list events, newest first")
    add_database_option(logs)
    _add_filters(logs)
    logs.add_argument("--limit", type=_positive_int, default=50, help="at most this many events (default 50)")
    logs.add_argument("--offset", type=_positive_int, default=0, help="skip this many events first")
    logs.add_argument("--json", action="store_true", help="one JSON object per line")
    logs.set_defaults(handler=_cmd_logs)

    show = subparsers.add_parser("show", help="show one event in full, content as stored")
    add_database_option(show)
    show.add_argument("event_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="the event as one JSON object")
    show.set_defaults(handler=_cmd_show)

    stats = subparsers.add_parser("stats", help="calls, errors, tokens, cost and latency per model and label")
    add_database_option(stats)
    _add_filters(stats)
    stats.add_argument("--json", action="store_true", help="one JSON object per group and line")
    stats.set_defaults(handler=_cmd_stats)

    migrate = subparsers.add_parser("migrate", help="create or upgrade the event store schema")
    add_database_option(migrate)
    migrate.add_argument("--revision", default="head", help=f"target revision (default head = {head_revision()})")
    migrate.set_defaults(handler=_cmd_migrate)

    tail = subparsers.add_parser("tail", help="print the latest events, then follow new ones")
    add_database_option(tail)
    _add_filters(tail)
    tail.add_argument("-n", "--lines", type=_positive_int, default=10, help="events shown first (default 10)")
    tail.add_argument("--interval", type=_positive_float, default=1.0, help="poll interval in seconds (default 1)")
    tail.add_argument("--max-seconds", type=_positive_float, default=None, help="stop after this many seconds")
    tail.add_argument("--count", type=_positive_int, default=None, help="stop after printing this many events")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.set_defaults(handler=_cmd_tail)
