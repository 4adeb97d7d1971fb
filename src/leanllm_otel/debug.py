"""Debug mode (``LeanLLMConfig(debug=True)`` / ``LEANLLM_DEBUG=true``): DEBUG logs and one stderr line per event.

The line reads ``[2026-04-28 12:34:56] gpt-4o-mini tokens=5/4 cost=$0.0000 latency=312ms`` (local time of the
call's start); unknown values print as ``-``. Streams add ``ttft=...ms``, failures add ``error=<kind>``.
"""

from __future__ import annotations

import logging
import sys
from typing import IO

from leanllm_otel.event import LLMEvent

_PACKAGE_LOGGER = "leanllm_otel"
_handler: logging.Handler | None = None


def enable_debug_logging() -> None:
    """DEBUG level for the ``leanllm_otel`` loggers, with a stderr handler unless one is configured already."""
    global _handler
    logger = logging.getLogger(_PACKAGE_LOGGER)
    logger.setLevel(logging.DEBUG)
    if _handler is None and not logger.handlers:
        _handler = logging.StreamHandler(sys.stderr)
        _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(_handler)


def format_summary(event: LLMEvent) -> str:
    """The one-line summary of ``event``."""
    when = event.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    tokens_in = "-" if event.input_tokens is None else str(event.input_tokens)
    tokens_out = "-" if event.output_tokens is None else str(event.output_tokens)
    cost = "-" if event.cost is None else f"${event.cost:.4f}"
    latency = "-" if event.latency_ms is None else f"{round(event.latency_ms)}ms"
    line = f"[{when}] {event.model or '-'} tokens={tokens_in}/{tokens_out} cost={cost} latency={latency}"
    if event.stream and event.time_to_first_token_ms is not None:
        line += f" ttft={round(event.time_to_first_token_ms)}ms"
    if event.is_error:
        line += f" error={event.error_kind or event.error_type or 'unknown'}"
    return line


def print_summary(event: LLMEvent, stream: IO[str] | None = None) -> None:
    """Write the summary line to ``stream`` (default: the current ``sys.stderr``)."""
    out = stream if stream is not None else sys.stderr
    try:
        out.write(format_summary(event) + "\n")
        out.flush()
    except Exception:  # a closed stderr must not break the call
        logging.getLogger(__name__).debug("could not write the debug summary", exc_info=True)
