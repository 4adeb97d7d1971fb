"""LiteLLM instrumentation: the instrumentor, call wrappers, stream proxies and attribute extraction."""
