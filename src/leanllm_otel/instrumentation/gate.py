"""``CallGate``: what the instrumentation asks an opt-in gate (the guardrails' ``Guard``) about each call.

The instrumentation owns this protocol; a gate implements it structurally and imports nothing from
``leanllm_otel.instrumentation``. A gate is installed on a ``Telemetry`` (``Telemetry.install_gate``; one at a
time, ``remove_gate`` clears it) and consulted only while installed:

- :meth:`CallGate.admit` at span start, with the call's kwargs and start attributes. It answers None (admitted,
  nothing to keep) or an :class:`Admission`. An admission with a ``refusal`` refuses the call: the invocation ends
  its own span as an error with ``refusal_attributes`` and raises :class:`Refused`, which the wrapper turns into the
  gate's exception for the caller. An admission's ``monitor`` (streams only) sees each chunk before it is handed
  over (:class:`ChunkMonitor`).
- :meth:`CallGate.call_ended` once the span has ended (every call the gate saw start, refused ones included).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["Admission", "CallGate", "ChunkMonitor", "Refused"]


class ChunkMonitor(Protocol):
    """Watches a stream on the caller's thread."""

    def feed(self, chunk: Any) -> BaseException | None:
        """Take one chunk; the exception to raise instead of delivering it, or None."""

    def end_attributes(self) -> Mapping[str, Any]:
        """Attributes for the span, set just before it ends."""


class Admission(Protocol):
    """What a gate keeps for one call it saw start."""

    @property
    def monitor(self) -> ChunkMonitor | None: ...

    @property
    def refusal(self) -> BaseException | None: ...

    @property
    def refusal_attributes(self) -> Mapping[str, Any]: ...


class CallGate(Protocol):
    """Admission at call start, a chunk monitor for streams, and the end of each call."""

    def admit(self, kwargs: Mapping[str, Any], stream: bool, attributes: Mapping[str, Any]) -> Admission | None:
        """At span start: None (admitted, nothing to keep) or the call's :class:`Admission` (maybe a refusal)."""

    def call_ended(self, admission: Admission | None, span: Any, exc: BaseException | None) -> None:
        """After the span ended (caller's thread: cheap work only)."""


class Refused(Exception):
    """A gate refused the call; its span has ended. The wrapper raises ``error`` to the caller."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error
