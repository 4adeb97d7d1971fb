"""LeanLLM client quickstart: runs offline (LiteLLM's ``mock_response``), stores events in a temporary SQLite file.

    python examples/client_quickstart.py
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch of LiteLLM's price map

from leanllm_otel import LeanLLM, LeanLLMConfig, LLMEvent, RedactionMode, trace
from leanllm_otel.lineage import ExecutionGraph


def main() -> None:
    database = os.path.join(tempfile.mkdtemp(prefix="leanllm-quickstart-"), "events.db")
    config = LeanLLMConfig(database_url=f"sqlite:///{database}", auto_chain=True, environment="demo")

    def before(snapshot: dict[str, object]) -> None:
        print(f"-> calling {snapshot['model']} (request {snapshot['request_id']})")

    def after(event: LLMEvent) -> None:  # streams call it when the stream ends
        cost = "n/a" if event.cost is None else f"${event.cost:.6f}"
        print(f"<- {event.model}: {event.input_tokens}/{event.output_tokens} tokens, {cost}")

    with LeanLLM(api_key="sk-not-needed-offline", config=config, pre_call_hook=before, post_call_hook=after) as client:
        with trace() as correlation_id:  # groups the calls and chains them (auto_chain)
            response = client.chat(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Say hi."}],
                labels={"feature": "quickstart"},
                mock_response="Hi there!",
            )
            print("answer:", response.choices[0].message.content)

            stream = client.chat(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Stream a haiku."}],
                stream=True,
                mock_response="Old pond, frog jumps in",
                redaction_mode=RedactionMode.FULL,  # this call's content is stored verbatim
            )
            print("stream:", "".join(chunk.choices[0].delta.content or "" for chunk in stream))

            client.chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "ping"}], log=False,
                        mock_response="pong")  # a health check: no event at all

        last = client.last_event
        assert last is not None
        print("last event:", last.event_id, "stream:", last.stream, "ttft ms:", last.time_to_first_token_ms)
        print("recent events:", len(client.recent_events()))

        stored = client.list_events(correlation_id=correlation_id)
        print("stored events in this trace:", len(stored))
        graph = ExecutionGraph.from_events(stored)
        print(graph.render())
        assert len(stored) == 2 and len(graph.roots()) == 1


if __name__ == "__main__":
    main()
