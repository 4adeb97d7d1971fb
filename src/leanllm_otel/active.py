"""What leanllm has set up in this process, for the layers below the entry points to ask about.

A leaf module: ``pipeline.py`` keeps its live pipelines in :data:`pipelines` and the ``opentelemetry-instrument``
configurator (``distro.py``) records its processor in :data:`front`; the exporters read them through
:func:`leanllm_processor_in_front` and never import the entry points.
"""

from __future__ import annotations

from typing import Any

__all__ = ["front", "leanllm_processor_in_front", "pipelines"]

# Strong references: a pipeline nobody holds must still flush at exit (pipeline.py appends and removes).
pipelines: list[Any] = []
# The LeanLLMSpanProcessor the configurator placed in front of every trace exporter, once it ran.
front: Any = None


def leanllm_processor_in_front() -> bool:
    """Whether spans reach the exporters through a ``LeanLLMSpanProcessor`` (configure() or the configurator)."""
    return front is not None or bool(pipelines)
