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


def test_what_is_remembered_per_class_and_name_is_each_classes_own() -> None:
    # How an absent name is read is cached per (class, name): a class with a property of that name and one without
    # must each get their own answer, in either order, and a non-pydantic mapping is still read as a mapping.
    from collections.abc import Iterator, Mapping
    from typing import Any

    class _Plain(BaseModel):
        declared: int = 1

    class _Bag(Mapping[str, Any]):
        def __init__(self) -> None:
            self.attribute = "on the instance"

        def __getitem__(self, key: str) -> Any:
            if key != "derived":
                raise KeyError(key)
            return "from the mapping"

        def __iter__(self) -> Iterator[str]:
            return iter(["derived"])

        def __len__(self) -> int:
            return 1

    for _ in range(2):
        assert get_field(_Plain(), "derived") is None
        assert get_field(_Extra(declared=5), "derived") == 6
        assert get_field(_Bag(), "derived") == "from the mapping"
        assert get_field(_Bag(), "attribute") == "on the instance"
        assert get_field(_Extra(declared=1, derived_later=2), "derived_later") == 2  # type: ignore[call-arg]
