"""Which LiteLLM exception class the loopback provider's error bodies become, on the installed versions.

LiteLLM maps the OpenAI SDK's exceptions, so the answer depends on the OpenAI SDK as much as on LiteLLM. Found by
running ``tests/test_errors.py`` on the version matrix (and on LiteLLM 1.108.7 with each OpenAI SDK release):

==============================================  ================================  ==========================================
error body                                      OpenAI SDK < 3.38                 OpenAI SDK >= 3.38
                                                (LiteLLM 1.80.0 - 1.100.5 pin     (what LiteLLM 1.108.7 and 1.110.2 get by
                                                ``openai<3``)                     default)
==============================================  ================================  ==========================================
400 ``code: content_policy_violation``          ``ContentPolicyViolationError``   ``BadRequestError``
403                                             ``BadRequestError``               ``APIError`` carrying status 403
==============================================  ================================  ==========================================

Every other status maps the same way on every version of the matrix.
"""

from __future__ import annotations

import importlib.metadata

import litellm
from packaging.version import Version

OPENAI_SDK = Version(importlib.metadata.version("openai"))
NEW_OPENAI_MAPPING = Version("3.38") <= OPENAI_SDK

CONTENT_POLICY_400: type[Exception] = litellm.BadRequestError if NEW_OPENAI_MAPPING else litellm.ContentPolicyViolationError
FORBIDDEN_403: type[Exception] = litellm.APIError if NEW_OPENAI_MAPPING else litellm.BadRequestError
