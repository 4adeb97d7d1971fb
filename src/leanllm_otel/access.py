"""Reading a field of a value that may be a mapping or an object (LiteLLM's pydantic types): the one helper."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["get_field"]

_MISSING = object()


def get_field(obj: Any, name: str) -> Any:
    """``obj[name]`` for mappings, ``obj.name`` for objects (LiteLLM's pydantic types); None when absent."""
    if type(obj) is dict:
        return obj.get(name)
    if obj is None:
        return None
    # LiteLLM's response types are pydantic models whose __getattr__ raises (slowly) for every absent field:
    # read the instance dict first, then the extras, then class attributes (properties).
    values = getattr(obj, "__dict__", None)
    if values is not None:
        value = values.get(name, _MISSING)
        if value is not _MISSING:
            return value
        if hasattr(type(obj), "model_fields"):
            extra = getattr(obj, "__pydantic_extra__", None)
            if extra is not None and name in extra:
                return extra[name]
            return getattr(obj, name, None) if hasattr(type(obj), name) else None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)
