"""What the instrumented library must be, in the form ``opentelemetry-instrumentation`` checks."""

_instruments = ("litellm >= 1.80.0, != 1.82.7, != 1.82.8",)
_supports_metrics = True
