"""Every span attribute, event and metric name leanllm-otel uses, defined once.

``gen_ai.*`` names follow the OpenTelemetry GenAI semantic conventions; ``leanllm.*`` names carry the
``LLMEvent`` fields that the conventions lack. No other module spells an attribute name.
"""

from __future__ import annotations

from typing import Final

# --- GenAI semantic conventions ---------------------------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_TOP_K: Final = "gen_ai.request.top_k"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
GEN_AI_REQUEST_ENCODING_FORMATS: Final = "gen_ai.request.encoding_formats"
GEN_AI_OUTPUT_TYPE: Final = "gen_ai.output.type"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"

# The evaluation event (a log record parented to the evaluated operation's span) and its attributes.
GEN_AI_EVALUATION_RESULT_EVENT: Final = "gen_ai.evaluation.result"
GEN_AI_EVALUATION_NAME: Final = "gen_ai.evaluation.name"
GEN_AI_EVALUATION_SCORE_VALUE: Final = "gen_ai.evaluation.score.value"
GEN_AI_EVALUATION_SCORE_LABEL: Final = "gen_ai.evaluation.score.label"
GEN_AI_EVALUATION_EXPLANATION: Final = "gen_ai.evaluation.explanation"

SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"

EXCEPTION_EVENT: Final = "exception"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"

# gen_ai.operation.name values
OP_CHAT: Final = "chat"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_EMBEDDINGS: Final = "embeddings"
OP_GENERATE_CONTENT: Final = "generate_content"
OP_RETRIEVAL: Final = "retrieval"

# gen_ai.output.type values
OUTPUT_TYPE_TEXT: Final = "text"
OUTPUT_TYPE_JSON: Final = "json"
OUTPUT_TYPE_IMAGE: Final = "image"
OUTPUT_TYPE_SPEECH: Final = "speech"

# gen_ai.token.type values
TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"

# --- LeanLLM fields (no semconv equivalent) ---------------------------------------------------------------
LEANLLM_REQUEST_ID: Final = "leanllm.request_id"
LEANLLM_CORRELATION_ID: Final = "leanllm.correlation_id"
LEANLLM_PARENT_REQUEST_ID: Final = "leanllm.parent_request_id"
LEANLLM_LABEL_PREFIX: Final = "leanllm.label."
LEANLLM_ENVIRONMENT: Final = "leanllm.environment"
LEANLLM_USER_ID: Final = "leanllm.user_id"
LEANLLM_SESSION_ID: Final = "leanllm.session_id"
LEANLLM_FEATURE: Final = "leanllm.feature"
LEANLLM_TAG_PREFIX: Final = "leanllm.tag."
LEANLLM_COST_USD: Final = "leanllm.cost.usd"
LEANLLM_LATENCY_MS: Final = "leanllm.latency_ms"
LEANLLM_STREAM: Final = "leanllm.stream"
LEANLLM_STREAM_OUTCOME: Final = "leanllm.stream.outcome"
LEANLLM_STREAM_CHUNKS: Final = "leanllm.stream.chunks"
LEANLLM_TTFT_MS: Final = "leanllm.time_to_first_token_ms"
LEANLLM_STREAM_TIME_MS: Final = "leanllm.total_stream_time_ms"
LEANLLM_USAGE_REPORTED: Final = "leanllm.usage.reported"
LEANLLM_TOTAL_TOKENS: Final = "leanllm.usage.total_tokens"
LEANLLM_ERROR_KIND: Final = "leanllm.error.kind"
LEANLLM_ERROR_MESSAGE: Final = "leanllm.error.message"
LEANLLM_REDACTION_MODE: Final = "leanllm.redaction.mode"
LEANLLM_SAMPLING_RATE: Final = "leanllm.sampling.rate"
LEANLLM_SAMPLED: Final = "leanllm.sampled"
LEANLLM_CONTENT_CAPTURED: Final = "leanllm.content.captured"
LEANLLM_INPUT_MESSAGE_COUNT: Final = "leanllm.content.input_messages"
LEANLLM_INPUT_CHARS: Final = "leanllm.content.input_chars"
LEANLLM_OUTPUT_CHARS: Final = "leanllm.content.output_chars"
LEANLLM_TOOL_CALLS: Final = "leanllm.tool_calls"
LEANLLM_NORMALIZED_INPUT: Final = "leanllm.normalized.input"
LEANLLM_NORMALIZED_OUTPUT: Final = "leanllm.normalized.output"
LEANLLM_SECURITY_FINDINGS: Final = "leanllm.security.findings"  # JSON: {"type": count, ...}
LEANLLM_SECURITY_FINDING_TYPES: Final = "leanllm.security.finding_types"  # string array
LEANLLM_SECURITY_MAX_SEVERITY: Final = "leanllm.security.max_severity"
LEANLLM_SECURITY_BLOCKED: Final = "leanllm.security.blocked"
LEANLLM_SECURITY_BLOCK_REASON: Final = "leanllm.security.block_reason"
LEANLLM_BUDGET_EVENT: Final = "leanllm.budget.event"
LEANLLM_ANOMALIES: Final = "leanllm.anomalies"
LEANLLM_OUTPUT_MESSAGE_COUNT: Final = "leanllm.content.output_messages"
LEANLLM_CONTENT_TRUNCATED: Final = "leanllm.content.truncated"  # a content attribute was cut to the size cap

# A ``leanllm.security.findings`` type that is not a detector's: an exporter replaced characters its format cannot
# carry (a lone surrogate, NUL) with U+FFFD in this many values, and kept the event.
FINDING_REPAIRED_VALUE: Final = "REPAIRED_VALUE"

# leanllm.stream.outcome values
STREAM_COMPLETED: Final = "completed"
STREAM_ERROR: Final = "error"
STREAM_CLOSED: Final = "closed"
STREAM_ABANDONED: Final = "abandoned"
STREAM_CANCELLED: Final = "cancelled"

# --- Metrics ----------------------------------------------------------------------------------------------
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"

# --- Instrumentation scope --------------------------------------------------------------------------------
INSTRUMENTATION_SCOPE: Final = "leanllm_otel"
