"""Exporters for leanllm spans: SQL store (``exporters.sql``), LeanLLM service, shared delivery machinery.

Kept import-light on purpose: import the submodule you need (e.g. ``leanllm_otel.exporters.sql``).
"""
