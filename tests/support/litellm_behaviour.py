"""Which LiteLLM exception class the loopback provider's error bodies become, on the installed versions.

LiteLLM maps the OpenAI SDK's exceptions, so the answer depends on the OpenAI SDK as much as on LiteLLM. Found by
running ``tests/test_errors.py`` on the version matrix (and on LiteLLM 1.108.7 with each OpenAI SDK release):

- 400 with ``code: content_policy_violation``: ``ContentPolicyViolationError`` with OpenAI SDK < 3.38,
  ``BadRequestError`` from 3.38 on;
- 403: ``BadRequestError`` with OpenAI SDK < 3.38, ``APIError`` carrying status 403 from 3.38 on.

LiteLLM 1.80.0 to 1.100.5 pin ``openai<3`` (the old mapping); LiteLLM 1.108.7 and 1.110.2 accept ``openai<4`` and
get a 3.38+ SDK in a fresh install (the new mapping); LiteLLM 1.108.7 with the SDK held below 3.38 maps the old way.
Every other status maps the same way on every version of the matrix.
"""

from __future__ import annotations

import importlib.metadata

import litellm
from packaging.version import Version

OPENAI_SDK = Version(importlib.metadata.version("openai"))
NEW_OPENAI_MAPPING = Version("3.38") <= OPENAI_SDK

CONTENT_POLICY_400: type[Exception] = (
    litellm.BadRequestError if NEW_OPENAI_MAPPING else litellm.ContentPolicyViolationError
)
FORBIDDEN_403: type[Exception] = litellm.APIError if NEW_OPENAI_MAPPING else litellm.BadRequestError

LITELLM = Version(importlib.metadata.version("litellm"))

# LiteLLM 1.80.0's proxy loads a ``callbacks:`` entry only from a ``.py`` file beside config.yaml; 1.100.5 and later
# import the dotted module path when no such file exists (checked on the matrix's versions).
PROXY_CALLBACKS_FROM_FILES_ONLY = Version("1.100.5") > LITELLM

# LiteLLM 1.80.0 ends an async chat stream whose connection broke mid-body without raising (the caller sees a short
# stream); 1.100.5 and later raise ``MidStreamFallbackError``.
ASYNC_STREAM_BREAK_IS_SILENT = Version("1.100.5") > LITELLM
