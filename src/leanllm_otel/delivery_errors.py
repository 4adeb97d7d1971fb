"""The two ways a write can fail, as every writer reports them and the delivery loop tells them apart.

A leaf module: the store's event writer raises them, the exporters' :mod:`~leanllm_otel.exporters.delivery`
retries on the first and drops on the second, the ingest service answers 503 or 400.
"""

from __future__ import annotations

__all__ = ["PermanentError", "RetryableError"]


class RetryableError(Exception):
    """A failure worth retrying (backend down, timeout, lock, HTTP 429/5xx)."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class PermanentError(Exception):
    """A failure that retrying cannot fix (rejected payload, bad credentials): the batch is dropped."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
