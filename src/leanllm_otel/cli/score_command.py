"""``leanllm-otel score``: give a stored event a feedback score.

::

    leanllm-otel score EVENT_ID user_feedback true --comment "exactly right"
    leanllm-otel score EVENT_ID relevance 0.8
    leanllm-otel score EVENT_ID category billing

VALUE: ``true``/``false`` (also ``up``/``down``) is a boolean, a number is numeric, anything else a category. The
score is written to the store and, where OTLP export is configured (``OTEL_EXPORTER_OTLP_ENDPOINT``, ...), sent as
a ``gen_ai.evaluation.result`` event. Exit code 1 when the event is not in the store.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from leanllm_otel.cli import CLIError, add_database_option, print_json_line, resolve_database_url

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from leanllm_otel.config import LeanLLMConfig
    from leanllm_otel.feedback import ScoreRecorder
    from leanllm_otel.scores import parse_value
    from leanllm_otel.store.queries import EventStore, StoreError

    database_url = resolve_database_url(args)
    try:
        with EventStore(database_url) as store:
            event = store.get_event(args.event_id)
    except StoreError as exc:
        raise CLIError(str(exc)) from None
    if event is None:
        raise CLIError(f"event {args.event_id!r} not found")
    config = LeanLLMConfig.from_env(database_url=database_url, leanllm_api_key=None)
    recorder = ScoreRecorder(config)
    try:
        score = recorder.record(args.event_id, args.name, parse_value(args.value), args.comment, source="cli")
    except ValueError as exc:
        raise CLIError(str(exc), code=2) from None
    finally:
        recorder.flush()
        recorder.close()
    if args.json:
        print_json_line(score.to_payload())
    else:
        sys.stdout.write(f"scored {score.event_id}: {score.name} = {score.display} ({score.kind})\n")
    return 0


def register(subparsers: Any) -> None:
    """Add ``score`` to the ``leanllm-otel`` parser."""
    parser = subparsers.add_parser(
        "score", help="give a stored event a feedback score", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add_database_option(parser)
    parser.add_argument("event_id", metavar="ID")
    parser.add_argument("name", metavar="NAME", help="what is scored, e.g. user_feedback, relevance")
    parser.add_argument("value", metavar="VALUE", help="true/false, a number, or a category")
    parser.add_argument("--comment", help="a note kept with the score")
    parser.add_argument("--json", action="store_true", help="print the stored score as one JSON object")
    parser.set_defaults(handler=_run)
