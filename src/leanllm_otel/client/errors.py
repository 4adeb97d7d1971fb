"""The client's own exceptions."""

from __future__ import annotations


class ClientClosedError(RuntimeError):
    """The client was closed; create a new one (or call ``leanllm_otel.init()`` again)."""


class PersistenceUnavailableError(RuntimeError):
    """The events API needs the SQL store: persistence is off, or events go to the remote LeanLLM service."""
