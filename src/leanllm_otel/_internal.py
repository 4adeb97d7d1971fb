"""Internal-error discipline: telemetry failures are logged and swallowed, except under test where they surface."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("leanllm_otel")

_MODE_VARIABLE = "LEANLLM_INTERNAL_ERRORS"


def _should_raise() -> bool:
    mode = os.environ.get(_MODE_VARIABLE, "").strip().lower()
    if mode in ("raise", "log"):
        return mode == "raise"
    return "PYTEST_CURRENT_TEST" in os.environ


def log_internal_error(message: str) -> None:
    """Call from an ``except`` block inside telemetry code.

    In production the exception is logged once with its traceback and swallowed so the application never sees it.
    Under pytest (or with ``LEANLLM_INTERNAL_ERRORS=raise``) it is re-raised so a test catches the bug.
    """
    if _should_raise():
        raise
    logger.exception("leanllm-otel internal error: %s", message)
