"""The LeanLLM client: ``LeanLLM`` and the module-level default client.

- :mod:`~leanllm_otel.client.facade`: ``LeanLLM``, the public methods;
- :mod:`~leanllm_otel.client.calls`: the one call path (sync and async) and the per-call controls;
- :mod:`~leanllm_otel.client.events`: the ``last_event`` ring buffer and the stored-events API;
- :mod:`~leanllm_otel.client.shared`: the pipeline clients share (one per process);
- :mod:`~leanllm_otel.client.default`: ``init`` / ``get_client`` / ``chat`` / ``completion`` / ``shutdown``.
"""

from __future__ import annotations

from leanllm_otel.client.calls import CallControl
from leanllm_otel.client.default import chat, completion, get_client, init, shutdown
from leanllm_otel.client.errors import ClientClosedError, PersistenceUnavailableError
from leanllm_otel.client.facade import LeanLLM

__all__ = [
    "CallControl",
    "ClientClosedError",
    "LeanLLM",
    "PersistenceUnavailableError",
    "chat",
    "completion",
    "get_client",
    "init",
    "shutdown",
]
