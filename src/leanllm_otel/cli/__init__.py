"""The ``leanllm-otel`` command.

Each command group lives in its own module listed in :data:`COMMAND_MODULES`; a module exposes
``register(subparsers) -> None`` and gives every sub-command a ``handler(args) -> int`` via ``set_defaults``.
Adding a group (``replay``, ``serve``, ``report``) is one line in that list.

Exit codes: 0 success, 1 failure (not found, database error; one-line message on stderr), 2 usage error,
130 interrupted. No traceback is printed unless ``LEANLLM_DEBUG`` is on.

Everything a command prints goes through :mod:`leanllm_otel.textsafe`: stored fields are untrusted text, and no
terminal control sequence in them reaches the terminal (table cells are one line; JSON lines escape controls).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any

from leanllm_otel.textsafe import SafeStream, json_safe, one_line

__all__ = [
    "COMMAND_MODULES",
    "CLIError",
    "add_database_option",
    "build_parser",
    "main",
    "print_json_line",
    "print_table",
    "resolve_database_url",
]

PROG = "leanllm-otel"

COMMAND_MODULES: list[str] = [
    "leanllm_otel.cli.store_commands",
    "leanllm_otel.cli.report_command",
    "leanllm_otel.cli.replay_command",
    "leanllm_otel.cli.serve_command",
    "leanllm_otel.cli.ui_command",
    "leanllm_otel.cli.score_command",
]

DATABASE_URL_ENV = "LEANLLM_DATABASE_URL"


class CLIError(Exception):
    """A failure to report as ``leanllm-otel: error: <message>`` with exit code ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# --- helpers for command modules ---------------------------------------------------------------------------


def add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help=f"sqlite:///path.db or postgresql://user:pw@host/db (default: ${DATABASE_URL_ENV})",
    )


def resolve_database_url(args: argparse.Namespace) -> str:
    """``--database-url``, else ``$LEANLLM_DATABASE_URL``, else a usage error."""
    url: str | None = getattr(args, "database_url", None) or os.environ.get(DATABASE_URL_ENV, "").strip() or None
    if not url:
        raise CLIError(
            "no database given: pass --database-url sqlite:///events.db (or postgresql://...) "
            f"or set {DATABASE_URL_ENV}",
            code=2,
        )
    return url


def print_table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], out: IO[str] | None = None, right_align: Iterable[int] = ()
) -> None:
    """Print an aligned text table (columns padded to their widest cell; ``right_align``: column indexes)."""
    out = out or sys.stdout
    cells = [[one_line(h) for h in headers], *[[one_line(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    right = set(right_align)
    for row in cells:
        parts = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        out.write("  ".join(parts).rstrip() + "\n")


def print_json_line(obj: Any, out: IO[str] | None = None) -> None:
    """``obj`` as one JSON line; control characters in its strings are JSON escapes (it parses to the same)."""
    text = json.dumps(obj, ensure_ascii=False, default=str, separators=(",", ":"))
    (out or sys.stdout).write(json_safe(text) + "\n")


# --- parser and entry point --------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's exit(2) with our prefix
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser(modules: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Inspect and manage the leanllm-otel event store.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in modules if modules is not None else COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(subparsers)
    return parser


def _debug() -> bool:
    return os.environ.get("LEANLLM_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (never raises, except to let ``--help``/usage exit normally)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else 2
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeStream(out), SafeStream(err)
    try:
        return _run(handler, args)
    finally:
        # (a reader that went away left a replacement stdout in place: keep that one)
        if isinstance(sys.stdout, SafeStream):
            sys.stdout = out
        if isinstance(sys.stderr, SafeStream):
            sys.stderr = err


def _run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return handler(args)
    except CLIError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Reader went away (`leanllm-otel logs | head`): stop quietly.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the closed stdout for interpreter exit
        return 0
    except Exception as exc:
        if _debug():
            raise
        message = str(exc).strip().splitlines()
        sys.stderr.write(f"{PROG}: error: {message[0] if message else type(exc).__name__}\n")
        return 1
