"""normalize_input / normalize_output: pure, content-free features with a keyed hash."""

from __future__ import annotations

import json
from typing import Any

import litellm

from leanllm_otel import semconv as sc
from leanllm_otel.normalize import canonical_form, length_bucket, normalize_input, normalize_output, semantic_hash

KEY = b"k" * 32


def test_canonical_form_and_keyed_hash_ignore_case_width_and_whitespace() -> None:
    a = [{"role": "user", "content": "Hello   World\n"}]
    full_width_hello = "\uff28\uff25\uff2c\uff2c\uff2f"
    b = [{"role": "user", "parts": [{"type": "text", "content": f"{full_width_hello} world"}]}]  # semconv shape
    assert canonical_form(a) == canonical_form(b) == "user: hello world"
    fa, fb = normalize_input(a, hash_key=KEY), normalize_input(b, hash_key=KEY)
    assert fa["semantic_hash"] == fb["semantic_hash"] and fa["semantic_hash"].startswith("hmac-sha256:")
    assert normalize_input(a, hash_key=b"other")["semantic_hash"] != fa["semantic_hash"]
    assert normalize_input([{"role": "user", "content": "bye"}], hash_key=KEY)["semantic_hash"] != fa["semantic_hash"]


def test_never_an_unsalted_hash_and_never_the_content() -> None:
    features = normalize_input([{"role": "user", "content": "my secret plan"}])
    assert "semantic_hash" not in features
    assert semantic_hash("x", None) is None
    assert "secret" not in json.dumps(normalize_input([{"role": "user", "content": "my secret plan"}], hash_key=KEY))


def test_length_buckets() -> None:
    assert [length_bucket(n) for n in (0, 63, 64, 255, 1023, 4095, 16383, 16384)] == [
        "xs", "xs", "s", "s", "m", "l", "xl", "xxl"]
    assert normalize_input("x" * 300)["length_bucket"] == "m" and normalize_input("x" * 300)["chars"] == 300


def test_script_and_language() -> None:
    assert normalize_input("What is the capital of France and how big is it?")["language"] == "en"
    assert normalize_input("¿Cuál es la capital de Francia y por qué es tan grande?")["language"] == "es"
    assert normalize_input("Quelle est la capitale de la France et pour qui est-elle?")["language"] == "fr"
    assert normalize_input("Wie ist das Wetter und ist es nicht zu kalt?")["language"] == "de"
    ja = normalize_input("東京はどこですか")
    assert ja["language"] == "ja"
    assert normalize_input("北京在哪里")["language"] == "zh" and normalize_input("북경은 어디")["language"] == "ko"
    ru = normalize_input("Где находится Москва")
    assert ru["script"] == "cyrillic" and ru["language"] is None  # script alone does not name the language
    assert normalize_input("ok")["language"] is None


def test_input_types_and_multimodal_safety() -> None:
    huge_image = "data:image/png;base64," + "A" * 200_000
    multimodal = [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": huge_image}},
        {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}},
    ]}]
    features = normalize_input(multimodal, hash_key=KEY)
    assert features["input_type"] == "multimodal" and features["media"] == {"audio": 1, "image": 1}
    assert features["chars"] < 100  # the image bytes are never read as text
    assert normalize_input([{"role": "user", "content": "hi"}])["input_type"] == "text"
    conversation = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    conv = normalize_input(conversation)
    assert conv["input_type"] == "conversation" and conv["turns"] == 2 and conv["has_system"]
    tool = [{"role": "user", "content": "weather?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]
    assert normalize_input(tool)["input_type"] == "tool_result"
    assert normalize_input([])["input_type"] == "empty"


def test_output_types() -> None:
    assert normalize_output("Just some words.")["output_type"] == "text"
    assert normalize_output('{"a": 1, "b": [2]}')["output_type"] == "json"
    assert normalize_output('```json\n{"a": 1}\n```')["output_type"] == "json"
    assert normalize_output("```python\nprint(1)\n```")["output_type"] == "code"
    assert normalize_output("def f(x):\n    return x\nclass A:\n    pass")["output_type"] == "code"
    assert normalize_output("")["output_type"] == "empty"
    semconv = [{"role": "assistant", "parts": [{"type": "tool_call", "id": "1", "name": "lookup", "arguments": {}}]}]
    tool = normalize_output(semconv)
    assert tool["output_type"] == "tool_call" and tool["tools"] == ["lookup"] and tool["tool_calls"] == 1


def test_output_from_a_litellm_response() -> None:
    response = litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}],
                                  mock_response='{"answer": 42}')
    features = normalize_output(response, hash_key=KEY)
    assert features["output_type"] == "json" and features["semantic_hash"].startswith("hmac-sha256:")
    assert features == normalize_output('{"answer": 42}', hash_key=KEY) | {"output_type": "json"}


def test_auto_normalize_puts_features_not_content_on_exported_spans(make_instrumented: Any) -> None:
    inst = make_instrumented(auto_normalize=True)
    litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi there"}],
                       mock_response='{"answer": 42}')
    stream = litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi there"}],
                                mock_response="plain words", stream=True)
    for _ in stream:
        pass
    plain, streamed = inst.llm_spans()
    for span in (plain, streamed):
        features = json.loads(span.attributes[sc.LEANLLM_NORMALIZED_INPUT])
        assert features["input_type"] == "text" and features["turns"] == 1
        assert "semantic_hash" not in features  # no configured key: no hash rather than an incomparable one
        assert sc.GEN_AI_INPUT_MESSAGES not in span.attributes  # features only, never the content
    assert json.loads(plain.attributes[sc.LEANLLM_NORMALIZED_OUTPUT])["output_type"] == "json"
    assert json.loads(streamed.attributes[sc.LEANLLM_NORMALIZED_OUTPUT])["output_type"] == "text"
