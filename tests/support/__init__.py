"""The test suite's name for the loopback servers of the top-level ``loopback`` package (shared with benchmarks/),
plus what only the tests need (``litellm_behaviour``: facts about the installed LiteLLM)."""

from loopback import (
    LeanLLMServiceServer,
    OpenAIServer,
    OTLPReceiver,
    PostgresServer,
    PostgresUnavailable,
    ReceivedExport,
    RecordedRequest,
    ServiceRequest,
    parse_behaviour,
)
from loopback import openai_server as openai_server

__all__ = [
    "LeanLLMServiceServer",
    "OTLPReceiver",
    "OpenAIServer",
    "PostgresServer",
    "PostgresUnavailable",
    "ReceivedExport",
    "RecordedRequest",
    "ServiceRequest",
    "openai_server",
    "parse_behaviour",
]
