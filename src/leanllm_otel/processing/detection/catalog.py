"""What the detectors look for: categories, severities, and the PII and secret patterns with their validators.

Every pattern is RE2 syntax (linear-time matching on untrusted text). Where a shape alone collides with ordinary
numbers (nine digits, a run of digits after a 0), the pattern matches the shape and a validator from
:mod:`~leanllm_otel.processing.detection.validators` decides with a check digit or the words before it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from leanllm_otel.processing.detection import token_checks as t
from leanllm_otel.processing.detection import validators as v

PII: Final = "pii"
SECRET: Final = "secret"
INJECTION: Final = "injection"
CUSTOM: Final = "custom"
CATEGORIES: Final = frozenset({PII, SECRET, INJECTION})


class Severity(enum.IntEnum):
    """How bad a finding is; ordered, so ``max()`` works."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4


@dataclass(frozen=True, slots=True)
class Spec:
    """One pattern of one finding type."""

    type: str
    category: str
    severity: Severity
    pattern: str
    validator: v.Validator | None = None
    group: int = 0  # report this capture group's span (context before it is matched but not redacted)
    trim: Callable[[str, int, int], int] | None = None  # may shorten the end of an accepted match


_H = Severity.HIGH
_M = Severity.MEDIUM
_C = Severity.CRITICAL
_L = Severity.LOW

_IPV4_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_EXT = r"(?:\s?(?:x|ext\.?)\s?[0-9]{1,6})?"  # a phone extension: 206.269.0743x9150
_CTX = r"[^0-9\n]{0,24}?"  # between a context word and its value
# Words for a phone number in the locales covered (validators.PHONE_WORDS holds the same for look-behind checks).
_PHONE_WORD = (
    r"(?i)(?:\b(?:phone|telephone|tel|mobile|mob|cell|cellphone|call|callback|ring|text|sms|whatsapp|whats|fax|hotline"
    r"|dial|reach|contact|number|landline|telefon\w*|handy\w*|anruf\w*|ruf|rufen|rufnummer|rückruf\w*|zurückruf\w*"
    r"|erreichbar|erreichen|festnetz|mobil|kontakt|t[ée]l[ée]phone|t[ée]l|portable|r?appel\w*|num[ée]ro|joind\w*"
    r"|joign\w*|compose[zr]?|contacte[zr]?|texto|tel[ée]fono|m[óo]vil|ll[aá]m\w*|n[úu]mero|celular|contactar|marca[r]?"
    r"|telefone|ligu\w*|liga|ligar|retorn\w*|contat\w*|zap|cellulare|chiam\w*|richiam\w*|contatt\w*|telefoon\w*"
    r"|mobiel|bel|bellen|terugbel\w*|bereik\w*|nummer)\b|電話|携帯|連絡|番号|电话|手机|फोन|मोबाइल)"
)

PII_SPECS: Final = (
    # Values next to the name of the number first: on a tie they win over a shape that also fits.
    # Nine digits pass the eleven-test one time in eleven: only next to the name of the number.
    Spec("NL_BSN", PII, _H,
         r"(?i)\b(?:bsn|burgerservicenummer|sofi-?nummer|sofi-?nr)\b" + _CTX
         + r"([0-9]{9}|[0-9]{4}[. ][0-9]{2}[. ][0-9]{3}|[0-9]{3}[. ][0-9]{3}[. ][0-9]{3})\b",
         validator=v.nl_bsn, group=1),
    Spec("BR_CPF", PII, _H, r"(?i)\bcpf\b" + _CTX + r"([0-9]{11}|[0-9]{3}\.?[0-9]{3}\.?[0-9]{3}-?[0-9]{2})\b",
         validator=v.br_cpf, group=1),
    Spec("IN_AADHAAR", PII, _H,
         r"(?i)(?:\baadhaa?r|\badhaar|\buidai|\buid|आधार)" + _CTX + r"([0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4})\b",
         validator=v.in_aadhaar, group=1),
    Spec("EMAIL", PII, _M,
         r"[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
         r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b", validator=v.email),
    Spec("CREDIT_CARD", PII, _H,
         r"\b3[0-9]{3}[ -]?[0-9]{6}[ -]?[0-9]{4,5}\b|\b(?:[0-9]{4}[ -]?){3}[0-9]{1,7}\b"
         r"|\b[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}\b",
         validator=v.credit_card),
    Spec("IBAN", PII, _H,
         r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
         validator=v.iban, trim=v.iban_span),
    Spec("US_SSN", PII, _H, r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b|\b[0-9]{3} [0-9]{2} [0-9]{4}\b",
         validator=v.us_ssn),
    Spec("US_SSN", PII, _H,
         r"(?i)\b(?:ssn|social security(?: number| no\.?| #)?)(?:\s+is)?\W{0,3}([0-9]{9})\b",
         validator=v.us_ssn, group=1),
    Spec("UK_NIN", PII, _H, r"\b[A-Z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-Z]\b", validator=v.uk_nin),
    # NIR: sex, year, month, department (2A/2B in Corsica), commune, order, key; spaced as on the carte Vitale.
    Spec("FR_INSEE", PII, _H,
         r"\b[1-478] ?[0-9]{2} ?(?:0[1-9]|1[0-2]|[2-9][0-9]) ?(?:[0-9]{2}|2[AB]) ?[0-9]{3} ?[0-9]{3} ?[0-9]{2}\b",
         validator=v.fr_insee),
    Spec("ES_NIF", PII, _H, r"\b[0-9]{8}-?[A-Z]\b", validator=v.es_nif),
    Spec("ES_NIE", PII, _H, r"\b[XYZ]-?[0-9]{7}-?[A-Z]\b", validator=v.es_nif),
    Spec("IT_FISCAL_CODE", PII, _H,
         r"\b[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]\b",
         validator=v.it_fiscal_code),
    Spec("BR_CPF", PII, _H, r"\b[0-9]{3}\.[0-9]{3}\.[0-9]{3}-[0-9]{2}\b", validator=v.br_cpf),
    Spec("IN_AADHAAR", PII, _H, r"\b[2-9][0-9]{3}[ -][0-9]{4}[ -][0-9]{4}\b", validator=v.in_aadhaar),
    # International: "+" or "00", a country code, digit groups ("(0)" is the trunk prefix), an extension.
    Spec("PHONE", PII, _M,
         r"(?:\+|\b00)[1-9][0-9]{0,3}(?:[ .\-/]?(?:\(0\)|\([0-9]{1,5}\)|[0-9]{1,7})){1,7}" + _EXT + r"\b",
         validator=v.phone_international),
    # North American: (415) 555-2671, 415-555-2671, 415.555.2671, 415 555 2671, with an extension.
    Spec("PHONE", PII, _M,
         r"(?:\([2-9][0-9]{2}\) ?|\b[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}" + _EXT + r"\b",
         validator=v.phone_nanp),
    # National with a trunk 0 and at least one separator: 020 7946 0958, (0161) 4960066, 04 15 39 15 00.
    Spec("PHONE", PII, _M,
         r"(?:\(0[0-9]{1,5}\)[ .\-/]{0,2}|\b0[0-9]{1,5}[ .\-/]{1,2})[0-9]{2,8}(?:[ .\-/]{1,2}[0-9]{2,8}){0,4}" + _EXT
         + r"\b", validator=v.phone_national),
    # Brazil: (11) 91234-5678 (without the brackets, after a phone word: below).
    Spec("PHONE", PII, _M, r"\([1-9][0-9]\) ?9?[0-9]{4}[- ][0-9]{4}\b", validator=v.phone_national),
    # Any grouping, no "+" and no trunk 0 needed (Italian and Indian mobiles, 0612345678): after a phone word.
    Spec("PHONE", PII, _M, _PHONE_WORD + r"[^0-9+\n]{0,30}?([0-9][0-9 .\-/()]{7,18}[0-9])", group=1,
         validator=v.phone_after_word),
    Spec("IP_ADDRESS", PII, _L, rf"\b{_IPV4_OCTET}(?:\.{_IPV4_OCTET}){{3}}\b", validator=v.ipv4),
    Spec("IP_ADDRESS", PII, _L,
         r"\b[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{0,4}){1,6}:[0-9A-Fa-f]{1,4}\b", validator=v.ipv6),
)  # fmt: skip

SECRET_SPECS: Final = (
    Spec("PRIVATE_KEY", SECRET, _C,
         r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----"
         r"(?:\s|\\[nr])*(?:[A-Za-z][A-Za-z-]*:[^\n\\]*(?:\n|\\n))*[A-Za-z0-9+/=\s\\]*"
         r"(?:-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----)?"),
    Spec("ANTHROPIC_KEY", SECRET, _C, r"\bsk-ant-[A-Za-z0-9_-]{20,}", validator=t.has_digit_and_letter),
    Spec("OPENAI_KEY", SECRET, _C, r"\bsk-[A-Za-z0-9_-]{20,}", validator=t.openai_key),
    Spec("AWS_KEY", SECRET, _C, r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b"),
    Spec("AWS_KEY", SECRET, _C,
         r"(?i:aws_?secret_?(?:access_?)?key)[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+]|$)", group=1),
    Spec("GITHUB_TOKEN", SECRET, _C,
         r"\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,255})\b"),
    Spec("GITLAB_TOKEN", SECRET, _C, r"\bgl(?:pat|dt|rt|ptt|cbt|oas)-[A-Za-z0-9_-]{20,}", validator=t.random_looking),
    Spec("SLACK_TOKEN", SECRET, _C,
         r"\bxox[abposre]-[A-Za-z0-9-]{10,}|\bxapp-[0-9]-[A-Za-z0-9-]{10,}"
         r"|https://hooks\.slack\.com/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+"),
    Spec("GOOGLE_API_KEY", SECRET, _C, r"\bAIza[0-9A-Za-z_-]{35}"),
    Spec("STRIPE_KEY", SECRET, _C, r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}|\bwhsec_[0-9A-Za-z+/=]{24,}",
         validator=t.random_looking),
    Spec("HUGGINGFACE_TOKEN", SECRET, _C, r"\bhf_[A-Za-z0-9]{30,40}\b", validator=t.random_looking),
    Spec("NPM_TOKEN", SECRET, _C, r"\bnpm_[A-Za-z0-9]{36}\b", validator=t.random_looking),
    Spec("SENDGRID_KEY", SECRET, _C, r"\bSG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}", validator=t.random_looking),
    Spec("TWILIO_KEY", SECRET, _C, r"\bSK[0-9a-fA-F]{32}\b", validator=t.has_digit_and_letter),
    Spec("AZURE_STORAGE_KEY", SECRET, _C, r"(?i:\baccountkey)\s*=\s*([A-Za-z0-9+/]{40,}={0,2})", group=1),
    Spec("AZURE_SAS_TOKEN", SECRET, _C, r"(?i:\bsig)=([A-Za-z0-9%+/]{30,}(?:%3[Dd]|=){0,2})", group=1,
         validator=t.random_looking),
    Spec("JWT", SECRET, _H, r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    Spec("CONNECTION_STRING", SECRET, _C,
         r"\b[A-Za-z][A-Za-z0-9+.-]{1,30}://[^\s:/@?#'\"<>]*:[^\s@/'\"<>]+@[^\s/?#'\"<>]+", validator=t.conn_password),
    Spec("BEARER_TOKEN", SECRET, _H, r"(?i:\bbearer)\s+([A-Za-z0-9._~+/-]{16,}=*)", validator=t.opaque_token, group=1),
    Spec("BEARER_TOKEN", SECRET, _H, r"(?i:\bauthorization)\s*[:=]\s*(?i:basic)\s+([A-Za-z0-9+/]{8,}={0,2})", group=1),
    Spec("PASSWORD", SECRET, _H,
         r"(?i)\b[a-z0-9_-]*?(?:password|passwd|pwd|passphrase|secret|secret_key|api_key|apikey|access_key"
         r"|access_token|auth_token|refresh_token|client_secret|private_key)[\"']?\s*[:=]\s*[\"']?"
         r"([^\s\"'<>;,]{4,})", validator=t.password_value, group=1),
)  # fmt: skip
