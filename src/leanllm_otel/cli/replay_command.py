"""``leanllm-otel replay``: re-run stored events through LiteLLM and compare.

::

    leanllm-otel replay EVENT_ID [--model M] [--temperature T] [--max-tokens N] [--api-base URL] [--json]
    leanllm-otel replay --batch --filter model=gpt-4o-mini --filter label.feature=search --limit 20 --model M

``--filter KEY=VALUE`` (repeatable, all must match): ``model``, ``correlation_id``, ``label.<name>``, ``since``,
``until`` (ISO 8601 or an age such as ``2h``), ``errors`` (true/false). The provider key comes from the provider's
usual environment variable (``OPENAI_API_KEY``, ...) or ``--api-key-env NAME``. Exit code 1 when an event cannot be
replayed or (``--batch``) when any replay failed.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from leanllm_otel.cli import CLIError, add_database_option, print_json_line, resolve_database_url
from leanllm_otel.cli.store_commands import parse_time
from leanllm_otel.config import parse_bool
from leanllm_otel.replay import NotReplayableError, ReplayResult, replay_batch, replay_event
from leanllm_otel.store.queries import EventStore, StoreError


def _filter(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"invalid filter {text!r}: expected KEY=VALUE")
    if key not in ("model", "correlation_id", "since", "until", "errors") and not key.startswith("label."):
        raise argparse.ArgumentTypeError(
            f"unknown filter key {key!r}: use model, correlation_id, label.<name>, since, until or errors"
        )
    return key, value


def _criteria(filters: list[tuple[str, str]]) -> dict[str, Any]:
    criteria: dict[str, Any] = {"labels": {}}
    for key, value in filters:
        if key.startswith("label."):
            criteria["labels"][key[len("label.") :]] = value
        elif key in ("since", "until"):
            try:
                criteria[key] = parse_time(value)
            except argparse.ArgumentTypeError as exc:
                raise CLIError(str(exc), code=2) from None
        elif key == "errors":
            try:
                criteria["errors_only"] = parse_bool(value)
            except ValueError as exc:
                raise CLIError(f"--filter errors: {exc}", code=2) from None
        else:
            criteria[key] = value
    return criteria


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if args.temperature is not None:
        overrides["temperature"] = args.temperature
    if args.max_tokens is not None:
        overrides["max_tokens"] = args.max_tokens
    if args.top_p is not None:
        overrides["top_p"] = args.top_p
    if args.seed is not None:
        overrides["seed"] = args.seed
    return overrides


def _litellm_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if args.api_base:
        kwargs["api_base"] = args.api_base
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            raise CLIError(f"--api-key-env {args.api_key_env}: the variable is not set", code=2)
        kwargs["api_key"] = key
    return kwargs


def _print_result(result: ReplayResult, as_json: bool) -> None:
    if as_json:
        print_json_line(result.to_dict())
        return
    out = sys.stdout
    if result.skipped is not None:
        out.write(f"{result.event_id}  skipped: {result.skipped}\n")
        return
    if result.error is not None:
        out.write(f"{result.event_id}  {result.model}  failed: {result.error}\n")
        return
    verdict = "identical" if result.identical else "changed" if result.identical is False else "no stored output"
    tokens = "-" if result.token_delta is None else f"{result.token_delta:+d}"
    cost = "-" if result.cost_delta is None else f"{result.cost_delta:+.6f}"
    similarity = "-" if result.similarity is None else f"{result.similarity:.2f}"
    lossy = "  (redacted input)" if result.lossy else ""
    out.write(
        f"{result.event_id}  {result.original_model} -> {result.model}  {verdict}  similarity={similarity}  "
        f"tokens={tokens}  cost={cost}{lossy}\n"
    )
    if result.diff:
        out.write(result.diff if result.diff.endswith("\n") else result.diff + "\n")


def _cmd_replay(args: argparse.Namespace) -> int:
    if args.batch == (args.event_id is not None):
        raise CLIError("give either an event ID or --batch (with --filter ...)", code=2)
    if args.filter and not args.batch:
        raise CLIError("--filter only applies to --batch", code=2)
    overrides = _overrides(args)
    litellm_kwargs = _litellm_kwargs(args)
    try:
        store = EventStore(resolve_database_url(args))
    except StoreError as exc:
        raise CLIError(str(exc), code=2) from None
    try:
        if not args.batch:
            event = store.get_event(args.event_id)
            if event is None:
                raise CLIError(f"no event with id {args.event_id}")
            try:
                result = replay_event(event, model=args.model, litellm_kwargs=litellm_kwargs, **overrides)
            except NotReplayableError as exc:
                raise CLIError(f"cannot replay: {exc}") from None
            _print_result(result, args.json)
            return 1 if result.error is not None else 0
        events = store.list_events(**_criteria(args.filter), limit=args.limit)
    except StoreError as exc:
        raise CLIError(str(exc)) from None
    finally:
        store.close()
    summary = replay_batch(
        events,
        model=args.model,
        litellm_kwargs=litellm_kwargs,
        on_result=lambda r: _print_result(r, args.json),
        **overrides,
    )
    if args.json:
        print_json_line({"summary": summary.to_dict()})
    else:
        totals = summary.to_dict()
        sys.stdout.write(
            f"replayed {totals['replayed']} (identical {totals['identical']}, changed {totals['changed']}), "
            f"failed {totals['failed']}, skipped {totals['skipped']}; "
            f"tokens {totals['token_delta']:+d}, cost {totals['cost_delta']:+.6f}\n"
        )
    return 1 if summary.failed else 0


def register(subparsers: Any) -> None:
    """Add ``replay`` to the ``leanllm-otel`` parser."""
    replay = subparsers.add_parser("replay", help="re-run stored events (optionally on another model) and compare")
    add_database_option(replay)
    replay.add_argument("event_id", metavar="ID", nargs="?", help="the event to replay")
    replay.add_argument("--batch", action="store_true", help="replay every event matching --filter")
    replay.add_argument(
        "--filter",
        action="append",
        type=_filter,
        default=[],
        metavar="KEY=VALUE",
        help="batch filter: model, correlation_id, label.<name>, since, until, errors (repeatable)",
    )
    replay.add_argument("--limit", type=int, default=20, help="batch: at most this many events (default 20)")
    replay.add_argument("--model", help="replay on this LiteLLM model instead of the original")
    replay.add_argument("--temperature", type=float)
    replay.add_argument("--max-tokens", type=int)
    replay.add_argument("--top-p", type=float)
    replay.add_argument("--seed", type=int)
    replay.add_argument("--api-base", metavar="URL", help="provider base URL (e.g. a proxy)")
    replay.add_argument("--api-key-env", metavar="NAME", help="read the provider key from this environment variable")
    replay.add_argument("--json", action="store_true", help="one JSON object per result, then a summary line")
    replay.set_defaults(handler=_cmd_replay)
