"""What the detectors look for and the engine that runs it; the public surface is
:mod:`leanllm_otel.processing.detectors`.

``catalog`` (PII and secret patterns, categories, severities), ``validators`` and ``token_checks`` (plain-Python
checks over matched spans), ``checksums`` (check-digit algorithms), ``injection`` (prompt-injection patterns per
attack family) and ``scorer`` (the learned injection scorer and its packaged model, ``injection_model.json``);
``engine`` (the compiled scan and overlap resolution), ``findings`` (what a scan reports) and ``stream``
(incremental scanning).
"""
