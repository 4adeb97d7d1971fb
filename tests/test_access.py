"""leanllm_otel.access.get_field: one way to read a field of a mapping or of LiteLLM's pydantic types."""

from __future__ import annotations

from litellm.types.utils import Delta, Message, ModelResponse
from pydantic import BaseModel, ConfigDict

from leanllm_otel.access import get_field


class _Extra(BaseModel):
    model_config = ConfigDict(extra="allow")
    declared: int = 1

    @property
    def derived(self) -> int:
        return self.declared + 1


def test_mappings_objects_and_none() -> None:
    assert get_field({"a": 1}, "a") == 1 and get_field({"a": 1}, "b") is None
    assert get_field(None, "a") is None
    assert get_field(type("O", (), {"a": 2})(), "a") == 2


def test_pydantic_fields_extras_and_properties() -> None:
    model = _Extra(declared=3, loose="x")  # type: ignore[call-arg]
    assert get_field(model, "declared") == 3
    assert get_field(model, "loose") == "x"
    assert get_field(model, "derived") == 4
    assert get_field(model, "absent") is None


def test_litellm_types() -> None:
    message = Message(content="hi", role="assistant")
    assert get_field(message, "content") == "hi" and get_field(message, "no_such_field") is None
    assert get_field(Delta(content="d"), "content") == "d"
    assert get_field(ModelResponse(), "choices") is not None
