"""Real, loopback-only components the test suite and the benchmarks run against (not part of the package).

- :class:`OpenAIServer`: an OpenAI-compatible HTTP server whose behaviour is chosen by the model name.
- :class:`OTLPReceiver`: an OTLP/HTTP receiver that keeps raw bodies and decoded spans.
- :class:`PostgresServer`: a real PostgreSQL server in a temporary data directory.
- :class:`LeanLLMServiceServer`: a stand-in for the LeanLLM service (``POST /v1/events``).
- ``events`` (spans, events and configs for the SQL store) and ``viewer_data`` (a seeded store for the viewer).
"""

from .openai_server import OpenAIServer, RecordedRequest, parse_behaviour
from .otlp_receiver import OTLPReceiver, ReceivedExport
from .postgres import PostgresServer, PostgresUnavailable
from .service_server import LeanLLMServiceServer, ServiceRequest

__all__ = [
    "LeanLLMServiceServer",
    "OTLPReceiver",
    "OpenAIServer",
    "PostgresServer",
    "PostgresUnavailable",
    "ReceivedExport",
    "RecordedRequest",
    "ServiceRequest",
    "parse_behaviour",
]
