"""Reading a field of a value that may be a mapping or an object (LiteLLM's pydantic types): the one helper."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["get_field"]

_MISSING = object()
# Per (type, name) the value has no instance field for: how to read it. Asked of the class on every read these cost
# more than the read itself (pydantic's metaclass raises for absent names), so the answer is kept: types and names
# are few and long-lived; the cache stops growing at _CACHE_LIMIT entries (then the slow question is asked).
_NOT_PYDANTIC, _EXTRA_ONLY, _CLASS_ATTRIBUTE = 0, 1, 2  # getattr / extras else None / extras else getattr
_ABSENT: dict[tuple[type, str], int] = {}
_CACHE_LIMIT = 4096


def _absent_kind(cls: type, name: str) -> int:
    if not hasattr(cls, "model_fields"):
        kind = _NOT_PYDANTIC
    else:
        kind = _CLASS_ATTRIBUTE if hasattr(cls, name) else _EXTRA_ONLY
    if len(_ABSENT) < _CACHE_LIMIT:
        _ABSENT[(cls, name)] = kind
    return kind


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
        kind = _ABSENT.get((type(obj), name))
        if kind is None:
            kind = _absent_kind(type(obj), name)
        if kind:
            extra = getattr(obj, "__pydantic_extra__", None)
            if extra is not None and name in extra:
                return extra[name]
            return getattr(obj, name, None) if kind == _CLASS_ATTRIBUTE else None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)
