"""``leanllm-otel ui``: the local, read-only web viewer over the event store.

::

    leanllm-otel ui --database-url sqlite:///events.db [--host 127.0.0.1] [--port 4320]

Opens the store read-only (safe beside a running writer) and serves the events list, one event, the overview
and the JSON-lines export on http://127.0.0.1:4320. Binding any address other than loopback needs a token in
``LEANLLM_UI_TOKEN``: the viewer refuses to start without one, and then asks every visitor for it. Needs the
``serve`` extra. Stops on SIGINT / SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from leanllm_otel.cli import CLIError, add_database_option, resolve_database_url

__all__ = ["register", "run"]

_TOKEN_ENV = "LEANLLM_UI_TOKEN"  # the same name as leanllm_otel.ui.TOKEN_ENV (that module needs the extra)


def register(subparsers: Any) -> None:
    """Add ``ui`` to the ``leanllm-otel`` parser."""
    parser = subparsers.add_parser(
        "ui", help="browse the event store in a local web viewer (read-only)", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add_database_option(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4320, help="port to bind; 0 picks a free one (default: 4320)")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM. Returns the exit code; raises CLIError."""
    database_url = resolve_database_url(args)
    token = os.environ.get(_TOKEN_ENV, "").strip() or None
    try:
        from leanllm_otel.ui import UIServer
    except ImportError as exc:
        raise CLIError(f"ui needs the 'serve' extra: pip install 'leanllm-otel[serve]' ({exc.name})") from None
    from leanllm_otel.store.queries import StoreError

    if not logging.getLogger().handlers:
        logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        server = UIServer(database_url, host=args.host, port=args.port, token=token, log_level=args.log_level)
    except ValueError as exc:
        raise CLIError(str(exc), code=2) from None
    try:
        server.serve_forever()
    except StoreError as exc:
        raise CLIError(str(exc)) from None
    except OSError as exc:
        raise CLIError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0
