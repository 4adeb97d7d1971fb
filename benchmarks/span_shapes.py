"""The attributes of a finished, non-streamed chat call as the instrumentor records them (metadata mode), shared by
the throughput benchmarks: what is set when the call starts, and what is added when it ends."""

from __future__ import annotations

from typing import Any

from leanllm_otel import semconv as sc


def chat_start_attributes() -> dict[str, Any]:
    return {
        sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        sc.GEN_AI_REQUEST_TEMPERATURE: 0.2,
        sc.GEN_AI_REQUEST_MAX_TOKENS: 256,
        sc.SERVER_ADDRESS: "127.0.0.1",
        sc.SERVER_PORT: 8080,
        sc.LEANLLM_STREAM: False,
        sc.LEANLLM_SAMPLING_RATE: 1.0,
        sc.LEANLLM_REDACTION_MODE: "metadata",
        sc.LEANLLM_INPUT_MESSAGE_COUNT: 1,
        sc.LEANLLM_ENVIRONMENT: "bench",
    }


def chat_end_attributes() -> dict[str, Any]:
    return {
        sc.GEN_AI_RESPONSE_ID: "chatcmpl-bench",
        sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        sc.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
        sc.GEN_AI_USAGE_INPUT_TOKENS: 42,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 7,
        sc.LEANLLM_TOTAL_TOKENS: 49,
        sc.LEANLLM_USAGE_REPORTED: True,
        sc.LEANLLM_COST_USD: 0.0000105,
        sc.LEANLLM_LATENCY_MS: 812.5,
    }
