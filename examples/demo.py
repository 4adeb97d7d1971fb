"""leanllm-otel in one minute, offline: LiteLLM calls -> spans -> SQLite -> `leanllm-otel logs` / `stats` / `ui`.

Runs with no API key and no network: a loopback OpenAI-compatible provider is started on 127.0.0.1 inside this
script, and one call uses LiteLLM's own ``mock_response``.

    python examples/demo.py [--database-url sqlite:///leanllm_demo.db]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no internet here: use LiteLLM's bundled price map


class _Provider(BaseHTTPRequestHandler):
    """A tiny OpenAI-compatible chat endpoint: JSON answers, SSE streams, and a 429 for model 'rate-limited'."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        model = body.get("model", "")
        if model == "rate-limited":
            self._send(429, {"error": {"message": "slow down", "type": "rate_limit_error"}}, {"retry-after": "0"})
            return
        text = "Hello from the loopback provider!"
        usage = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
        if body.get("stream"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            for index, word in enumerate(text.split(" ")):
                delta = {"content": ("" if index == 0 else " ") + word}
                chunk = {"id": "chatcmpl-demo", "object": "chat.completion.chunk", "model": model,
                         "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            last = {"id": "chatcmpl-demo", "object": "chat.completion.chunk", "model": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage}
            self.wfile.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
            return
        self._send(200, {"id": "chatcmpl-demo", "object": "chat.completion", "created": int(time.time()),
                         "model": model, "usage": usage,
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}]})

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="sqlite:///leanllm_demo.db")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api_base = f"http://127.0.0.1:{server.server_port}/v1"

    import litellm

    import leanllm_otel

    litellm.suppress_debug_info = True  # LiteLLM's own 'Give Feedback' banner on errors
    from leanllm_otel.cli import main as cli

    pipeline = leanllm_otel.configure(database_url=args.database_url, capture_content=True)
    common: dict[str, Any] = {"api_base": api_base, "api_key": "sk-demo-not-a-real-key", "max_retries": 0}

    with leanllm_otel.trace() as correlation_id, leanllm_otel.use_context(feature="demo", user_id="user-42"):
        reply = litellm.completion(
            model="openai/gpt-4o-mini",
            messages=[{"role": "user", "content": "Say hi to ada@example.com"}],
            temperature=0.2,
            **common,
        )
        print("completion:", reply.choices[0].message.content)

        stream = litellm.completion(
            model="openai/gpt-4o-mini",
            messages=[{"role": "user", "content": "Stream a greeting"}],
            stream=True,
            stream_options={"include_usage": True},
            **common,
        )
        print("stream:    ", "".join(chunk.choices[0].delta.content or "" for chunk in stream))

        mocked = litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                    mock_response="(mocked by LiteLLM)")
        print("mocked:    ", mocked.choices[0].message.content)

        try:
            litellm.completion(model="openai/rate-limited", messages=[{"role": "user", "content": "x"}], **common)
        except litellm.RateLimitError as exc:
            print("error:     ", type(exc).__name__, "(recorded as an error event)")

    pipeline.force_flush()
    print(f"\ncorrelation id {correlation_id}; counters {pipeline.counters}")
    print(f"\n$ leanllm-otel logs --database-url {args.database_url}")
    cli(["logs", "--database-url", args.database_url, "--limit", "10"])
    print(f"\n$ leanllm-otel stats --database-url {args.database_url}")
    cli(["stats", "--database-url", args.database_url])
    pipeline.shutdown()
    server.shutdown()
    events_file = Path(args.database_url.removeprefix("sqlite:///")).resolve()
    print(f"\nEvents are in {events_file}")
    print(f"Browse them (then open http://127.0.0.1:4320): {_viewer_command(f'sqlite:///{events_file}')}")


def _viewer_command(database_url: str) -> str:
    """The one command that opens the viewer on the demo's database, with this environment's own executable."""
    executable = Path(sys.executable).with_name("leanllm-otel")
    program = "leanllm-otel"
    if executable.exists():
        program = str(executable)
        with contextlib.suppress(ValueError):
            program = os.path.relpath(executable) if executable.is_relative_to(Path.cwd()) else program
    return f"{shlex.quote(program)} ui --database-url {shlex.quote(database_url)}"


if __name__ == "__main__":
    main()
