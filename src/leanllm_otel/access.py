"""Reading a field of a value that may be a mapping or an object (LiteLLM's pydantic types): the one helper."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["get_field"]

_MISSING = object()
# Per type: is it a pydantic model; per (type, name): does the class define ``name`` (a property, a method). Asked
# of the class on every read these cost more than the read itself (pydantic's metaclass raises for absent names).
# Types are few and long-lived; the caches stop growing at _CACHE_LIMIT entries (then the slow question is asked).
_PYDANTIC: dict[type, bool] = {}
_CLASS_HAS: dict[tuple[type, str], bool] = {}
_CACHE_LIMIT = 4096


def _is_pydantic(cls: type) -> bool:
    known = _PYDANTIC.get(cls)
    if known is None:
        known = hasattr(cls, "model_fields")
        if len(_PYDANTIC) < _CACHE_LIMIT:
            _PYDANTIC[cls] = known
    return known


def _class_has(cls: type, name: str) -> bool:
    key = (cls, name)
    known = _CLASS_HAS.get(key)
    if known is None:
        known = hasattr(cls, name)
        if len(_CLASS_HAS) < _CACHE_LIMIT:
            _CLASS_HAS[key] = known
    return known


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
        cls = type(obj)
        if _is_pydantic(cls):
            extra = getattr(obj, "__pydantic_extra__", None)
            if extra is not None and name in extra:
                return extra[name]
            return getattr(obj, name, None) if _class_has(cls, name) else None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)
