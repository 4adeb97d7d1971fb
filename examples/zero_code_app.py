"""A LiteLLM application with no telemetry code at all, instrumented from the command line.

    pip install 'leanllm-otel[instruments]'
    export OTEL_TRACES_EXPORTER=otlp,leanllm             # or just `leanllm`
    export OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318
    export LEANLLM_DATABASE_URL=sqlite:///events.db
    export OPENAI_COMPATIBLE_API_BASE=http://localhost:8000/v1   # any OpenAI-compatible server
    opentelemetry-instrument python examples/zero_code_app.py [MODEL ...]

Each call becomes one span; leanllm-otel's processor samples and redacts it before the SQL store and the OTLP
collector see it. ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=leanllm`` turns the instrumentation off.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-map download at import

import litellm


def main(models: list[str]) -> int:
    api_base = os.environ.get("OPENAI_COMPATIBLE_API_BASE", "http://127.0.0.1:8000/v1")
    api_key = os.environ.get("OPENAI_COMPATIBLE_API_KEY", "sk-local")
    prompt = os.environ.get("ZERO_CODE_PROMPT", "Say hello in five words.")
    for model in models or ["openai/gpt-4o-mini"]:
        try:
            response = litellm.completion(
                model=model,
                api_base=api_base,
                api_key=api_key,
                max_retries=0,
                messages=[{"role": "user", "content": prompt}],
            )
            print(f"{model}: {response.choices[0].message.content}")
        except Exception as exc:  # the span records it as an error; the app carries on
            print(f"{model}: error {type(exc).__name__}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
