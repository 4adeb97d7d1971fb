"""``leanllm-otel serve``: run the self-hostable ingest service.

::

    LEANLLM_INGEST_TOKEN=... leanllm-otel serve --database-url postgresql://... [--host 127.0.0.1] [--port 4319]

Accepts ``POST /v1/events`` (the LeanLLM service protocol, what ``LeanLLMServiceExporter`` sends) and
``POST /v1/traces`` (OTLP/HTTP, protobuf or JSON: point an ``OTLPSpanExporter`` or a Collector's ``otlphttp``
exporter at it) and writes LLM spans into the SQL store. Prefer ``LEANLLM_INGEST_TOKEN`` over ``--token``: a
command-line argument is visible to every user of the machine (``ps``). Without a token the service only
binds a loopback address, unless ``--allow-unauthenticated`` says otherwise. Stops on SIGINT / SIGTERM.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from leanllm_otel.cli import CLIError, add_database_option, resolve_database_url
from leanllm_otel.config import mask_url

__all__ = ["TOKEN_ENV", "main", "register", "run"]

TOKEN_ENV = "LEANLLM_INGEST_TOKEN"


def _configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    add_database_option(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4319, help="port to bind; 0 picks a free one (default: 4319)")
    parser.add_argument(
        "--token", default=None, help=f"bearer token clients must send (default: ${TOKEN_ENV}; prefer the variable)"
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=16 * 1024 * 1024,
        help="largest request body, on the wire and after gunzip (default: 16 MiB)",
    )
    parser.add_argument(
        "--allow-unauthenticated", action="store_true", help="serve without a token on a non-loopback address"
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.set_defaults(handler=run)
    return parser


def register(subparsers: Any) -> None:
    """Add ``serve`` to the ``leanllm-otel`` parser."""
    _configure(
        subparsers.add_parser(
            "serve",
            help="run the ingest service (LeanLLM /v1/events and OTLP/HTTP /v1/traces -> SQL store)",
            description=__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    """Run the service in the foreground until SIGINT/SIGTERM. Returns the exit code; raises CLIError."""
    database_url = resolve_database_url(args)
    token = args.token or os.environ.get(TOKEN_ENV, "").strip() or None
    if token is None and not _is_loopback(args.host) and not args.allow_unauthenticated:
        raise CLIError(
            f"refusing to serve {args.host} without a token: set {TOKEN_ENV} (or pass --allow-unauthenticated)",
            code=2,
        )
    try:
        from leanllm_otel.ingest.server import IngestServer
    except ImportError as exc:
        raise CLIError(f"serve needs the 'serve' extra: pip install 'leanllm-otel[serve]' ({exc.name})") from None

    if not logging.getLogger().handlers:
        logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger = logging.getLogger("leanllm_otel.ingest")
    if token is None:
        logger.warning("no %s: the ingest service accepts unauthenticated requests", TOKEN_ENV)
    server = IngestServer(
        database_url,
        host=args.host,
        port=args.port,
        token=token,
        max_body_bytes=args.max_body_bytes,
        log_level=args.log_level,
    )
    logger.info("writing to %s", mask_url(database_url))
    try:
        server.serve_forever()
    except Exception as exc:
        raise CLIError(f"{type(exc).__name__}: {_safe(str(exc), database_url, token)}") from None
    return 0


def _safe(text: str, database_url: str, token: str | None) -> str:
    text = text.replace(database_url, mask_url(database_url))
    return text.replace(token, "***") if token else text


def main(argv: Sequence[str] | None = None) -> int:
    """``serve`` on its own (``python -m leanllm_otel.cli.serve_command ARGS``), with the CLI's error handling."""
    from leanllm_otel.cli import PROG, build_parser

    args = build_parser([__name__]).parse_args(["serve", *(argv if argv is not None else sys.argv[1:])])
    try:
        return run(args)
    except CLIError as exc:
        sys.stderr.write(f"{PROG} serve: error: {exc}\n")
        return exc.code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
