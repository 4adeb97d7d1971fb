"""The self-hostable ingest service (``leanllm-otel serve``).

It accepts the LeanLLM service protocol (``POST /v1/events``) and OTLP/HTTP traces (``POST /v1/traces``,
protobuf or JSON) and writes LLM spans into the SQL event store. Needs the ``serve`` extra
(``pip install 'leanllm-otel[serve]'``: starlette + uvicorn).
"""

from __future__ import annotations

from leanllm_otel.ingest.server import DEFAULT_HOST, DEFAULT_PORT, IngestServer, build_app

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "IngestServer", "build_app"]
