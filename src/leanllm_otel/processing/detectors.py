"""PII, secret and prompt-injection detectors on google-re2, plus the redaction primitive.

Every pattern is compiled once with RE2, whose matching time is linear in the input: no input, however hostile,
can make a scan backtrack. Python's ``re`` never touches scanned text; the checksum validators (Luhn, IBAN
mod-97, ...) run in plain Python on the matched substring only.

A :class:`Finding` records a type, a category, a severity and offsets into the scanned text, never the matched
text itself, so findings can be exported as ``{type: count}`` without leaking what was found.

>>> det = default_detector()
>>> det.redact("mail bob@example.com, key AKIAIOSFODNN7EXAMPLE")[0]
'mail [PII:EMAIL], key [SECRET:AWS_KEY]'
"""

from __future__ import annotations

import codecs
import enum
import ipaddress
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import re2

__all__ = [
    "CATEGORIES",
    "INJECTION_TYPES",
    "PII_TYPES",
    "SECRET_TYPES",
    "Detector",
    "DetectorConfig",
    "Finding",
    "Severity",
    "StreamScanner",
    "default_detector",
    "marker_for",
    "max_severity",
    "sanitize",
    "summarize",
]


class Severity(enum.IntEnum):
    """How bad a finding is; ordered, so ``max()`` works."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4


PII: Final = "pii"
SECRET: Final = "secret"
INJECTION: Final = "injection"
CUSTOM: Final = "custom"
CATEGORIES: Final = frozenset({PII, SECRET, INJECTION})

# Overlap resolution: lower rank wins a contested span ("secret beats pii beats injection").
_CATEGORY_RANK: Final = {SECRET: 0, CUSTOM: 1, PII: 2, INJECTION: 3}
_MARKER_PREFIX: Final = {PII: "PII", SECRET: "SECRET", CUSTOM: "CUSTOM"}


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected item. ``start``/``end`` index the scanned text and serve redaction only; never export them."""

    type: str
    category: str
    severity: Severity
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """What a :class:`Detector` looks for.

    ``extra_patterns`` maps a type name to an RE2 pattern; its findings have category ``"custom"``, are
    redacted as ``[CUSTOM:<NAME>]`` and run whatever ``enabled_categories`` says. ``allowlist`` holds exact
    strings that are never reported or redacted (a company support address, a documented test key).
    """

    extra_patterns: Mapping[str, str] = field(default_factory=dict)
    allowlist: Sequence[str] = ()
    enabled_categories: frozenset[str] = CATEGORIES


# --------------------------------------------------------------------------------------------------------------
# Validators: plain Python on the matched substring (and a few characters of context), never a regex.
# --------------------------------------------------------------------------------------------------------------

Validator = Callable[[str, int, int], bool]


def _digits(s: str) -> str:
    return "".join(c for c in s if "0" <= c <= "9")


def luhn_ok(number: str) -> bool:
    """Luhn checksum over the digits of ``number`` (separators ignored)."""
    digits = _digits(number)
    if not digits:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_brand_ok(digits: str) -> bool:
    n = len(digits)
    if not 13 <= n <= 19:
        return False
    first = digits[0]
    if first == "4":  # Visa
        return n in (13, 16, 19)
    if first == "3":  # Amex 34/37, Diners 30/36/38/39, JCB 35
        return (digits[:2] in ("34", "37") and n == 15) or (digits[1] in "05689" and n >= 14)
    if first in "56":  # Mastercard 51-55, Maestro, Discover, UnionPay
        return n >= 16 or digits[:2] in ("50", "56", "57", "58", "63", "67")
    if first == "2":  # Mastercard 2-series
        return 2221 <= int(digits[:4]) <= 2720 and n == 16
    return False


def _credit_card(text: str, s: int, e: int) -> bool:
    digits = _digits(text[s:e])
    return _card_brand_ok(digits) and luhn_ok(digits)


_IBAN_LENGTHS: Final = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def iban_ok(candidate: str) -> bool:
    """ISO 13616 check: known country, its exact length, and the mod-97 checksum."""
    iban = candidate.replace(" ", "").upper()
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum() or not iban.isascii():
        return False
    rearranged = iban[4:] + iban[:4]
    try:
        return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1
    except ValueError:
        return False


def _iban(text: str, s: int, e: int) -> bool:
    # The greedy pattern may swallow a following 1-4 character token ("... 3000 THIS"); drop trailing
    # space-separated groups until the checksum holds.
    groups = text[s:e].split(" ")
    while groups:
        if iban_ok("".join(groups)):
            return True
        groups.pop()
    return False


def _iban_span(text: str, s: int, e: int) -> int:
    groups = text[s:e].split(" ")
    while groups and not iban_ok("".join(groups)):
        groups.pop()
    return s + len(" ".join(groups))


def _us_ssn(text: str, s: int, e: int) -> bool:
    d = _digits(text[s:e])
    if len(d) != 9:
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


_NIN_BAD_PREFIXES: Final = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})


def _uk_nin(text: str, s: int, e: int) -> bool:
    return text[s : s + 2] not in _NIN_BAD_PREFIXES


_FILE_TLDS: Final = frozenset(
    {"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "js", "ts", "css", "py", "txt", "json", "lock"}
)


def _email(text: str, s: int, e: int) -> bool:
    match = text[s:e]
    tld = match.rsplit(".", 1)[-1].lower()
    if tld in _FILE_TLDS:  # icon@2x.png, retina assets
        return False
    # scp-style git remotes (git@github.com:org/repo.git) are not a person's address
    return not (match.startswith("git@") and text[e : e + 1] == ":")


def _phone(lo: int, hi: int) -> Validator:
    def check(text: str, s: int, e: int) -> bool:
        return lo <= len(_digits(text[s:e])) <= hi

    return check


# Words after which a dotted quad is a version or section number, not an address.
_VERSION_WORDS: Final = frozenset(
    {"v", "v.", "ver", "ver.", "version", "release", "build", "rev", "revision", "firmware", "sdk", "package",
     "section", "sec.", "chapter", "clause", "paragraph", "step", "item", "rule", "figure", "table", "§"}
)  # fmt: skip


def _ipv4(text: str, s: int, e: int) -> bool:
    ip = text[s:e]
    if ip.startswith("127.") or ip in ("0.0.0.0", "255.255.255.255"):
        return False
    after = text[e : e + 2]
    before = text[max(0, s - 2) : s]
    if (len(after) == 2 and after[0] in ".-" and after[1].isdigit()) or (
        len(before) == 2 and before[1] == "." and before[0].isdigit()
    ):
        return False  # part of a longer dotted sequence (1.2.3.4.5, 10.0.19045.3693)
    words = text[max(0, s - 24) : s].lower().replace(":", " ").replace("=", " ").split()
    return not (words and words[-1].strip("\"'(") in _VERSION_WORDS)


def _ipv6(text: str, s: int, e: int) -> bool:
    candidate = text[s:e]
    if text[e : e + 1].isalnum():
        return False
    try:
        addr = ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    if addr.is_loopback or addr.is_unspecified:
        return False
    # "fmt::Debug"-like code parses only with few groups; demand real structure.
    groups = [g for g in candidate.split(":") if g]
    return len(groups) >= 3 or (len(groups) >= 2 and any(len(g) == 4 for g in groups))


def _has_digit_and_letter(text: str, s: int, e: int) -> bool:
    tok = text[s:e]
    return any(c.isdigit() for c in tok) and any(c.isalpha() for c in tok)


def _openai(text: str, s: int, e: int) -> bool:
    return not text.startswith("sk-ant-", s) and _has_digit_and_letter(text, s, e)


def _opaque_token(text: str, s: int, e: int) -> bool:
    tok = text[s:e]
    has_lower = any(c.islower() for c in tok)
    has_upper = any(c.isupper() for c in tok)
    return any(c.isdigit() for c in tok) or (has_lower and has_upper and len(tok) >= 20)


def _is_identifier_path(tok: str) -> bool:
    return all(part.isidentifier() for part in tok.split("."))


def _password_value(text: str, s: int, e: int) -> bool:
    tok = text[s:e]
    if tok[0] in "/~$<{%([*.&@#!`\\" or any(c in tok for c in "()[]{}"):
        return False  # paths, templates, code expressions, masks
    if len(set(tok)) <= 2:  # ****, xxxx
        return False
    has_digit = any(c.isdigit() for c in tok)
    return not (_is_identifier_path(tok) and not has_digit)  # variable names, settings.SECRET_KEY, None


def _conn_password(text: str, s: int, e: int) -> bool:
    # scheme://user:PASSWORD@host — the password sits after the last ':' before '@'.
    creds = text[s:e].split("://", 1)[-1].rsplit("@", 1)[0]
    password = creds.split(":", 1)[1] if ":" in creds else ""
    return bool(password) and password[0] not in "$<{*%" and len(set(password)) > 1


# --------------------------------------------------------------------------------------------------------------
# Patterns
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Spec:
    type: str
    category: str
    severity: Severity
    pattern: str
    validator: Validator | None = None
    group: int = 0  # report this capture group's span (context before it is matched but not redacted)
    trim: Callable[[str, int, int], int] | None = None  # may shorten the end of an accepted match


_H = Severity.HIGH
_M = Severity.MEDIUM
_C = Severity.CRITICAL
_L = Severity.LOW

_IPV4_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"

_PII_SPECS: Final = (
    _Spec("EMAIL", PII, _M,
          r"[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
          r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b", validator=_email),
    _Spec("CREDIT_CARD", PII, _H,
          r"\b(?:[0-9]{4}[ -]?){3}[0-9]{1,7}\b|\b3[47][0-9]{2}[ -]?[0-9]{6}[ -]?[0-9]{5}\b",
          validator=_credit_card),
    _Spec("IBAN", PII, _H,
          r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
          validator=_iban, trim=_iban_span),
    _Spec("US_SSN", PII, _H, r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b|\b[0-9]{3} [0-9]{2} [0-9]{4}\b",
          validator=_us_ssn),
    _Spec("US_SSN", PII, _H,
          r"(?i)\b(?:ssn|social security(?: number| no\.?| #)?)(?:\s+is)?\W{0,3}([0-9]{9})\b",
          validator=_us_ssn, group=1),
    _Spec("UK_NIN", PII, _H,
          r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]\b",
          validator=_uk_nin),
    # International: "+" then country code and 1-6 digit groups (E.164 allows 15 digits; "(0)" adds one).
    _Spec("PHONE", PII, _M,
          r"\+[1-9][0-9]{0,3}(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,5})){1,6}\b", validator=_phone(8, 16)),
    # North American: (415) 555-2671, 415-555-2671, 415.555.2671, 415 555 2671.
    _Spec("PHONE", PII, _M,
          r"(?:\([2-9][0-9]{2}\) ?|\b[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}\b"),
    # National numbers with a trunk 0 and separators: 020 7946 0958, 07700 900123, 030-1234-5678.
    _Spec("PHONE", PII, _M, r"\b0[1-9][0-9]{1,4}[ -][0-9]{3,4}[ -]?[0-9]{3,4}\b", validator=_phone(10, 12)),
    _Spec("IP_ADDRESS", PII, _L, rf"\b{_IPV4_OCTET}(?:\.{_IPV4_OCTET}){{3}}\b",
          validator=_ipv4),
    _Spec("IP_ADDRESS", PII, _L,
          r"\b[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{0,4}){1,6}:[0-9A-Fa-f]{1,4}\b", validator=_ipv6),
)  # fmt: skip

_SECRET_SPECS: Final = (
    _Spec("PRIVATE_KEY", SECRET, _C,
          r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----"
          r"(?:\s|\\[nr])*(?:[A-Za-z][A-Za-z-]*:[^\n\\]*(?:\n|\\n))*[A-Za-z0-9+/=\s\\]*"
          r"(?:-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----)?"),
    _Spec("ANTHROPIC_KEY", SECRET, _C, r"\bsk-ant-[A-Za-z0-9_-]{20,}",
          validator=_has_digit_and_letter),
    _Spec("OPENAI_KEY", SECRET, _C, r"\bsk-[A-Za-z0-9_-]{20,}", validator=_openai),
    _Spec("AWS_KEY", SECRET, _C, r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b"),
    _Spec("AWS_KEY", SECRET, _C,
          r"(?i:aws_?secret_?(?:access_?)?key)[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+]|$)", group=1),
    _Spec("GITHUB_TOKEN", SECRET, _C,
          r"\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,255})\b"),
    _Spec("SLACK_TOKEN", SECRET, _C,
          r"\bxox[abposre]-[A-Za-z0-9-]{10,}|\bxapp-[0-9]-[A-Za-z0-9-]{10,}"
          r"|https://hooks\.slack\.com/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+"),
    _Spec("GOOGLE_API_KEY", SECRET, _C, r"\bAIza[0-9A-Za-z_-]{35}"),
    _Spec("STRIPE_KEY", SECRET, _C, r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}"),
    _Spec("JWT", SECRET, _H, r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    _Spec("CONNECTION_STRING", SECRET, _C,
          r"\b[A-Za-z][A-Za-z0-9+.-]{1,30}://[^\s:/@?#'\"<>]*:[^\s@/'\"<>]+@[^\s/?#'\"<>]+", validator=_conn_password),
    _Spec("BEARER_TOKEN", SECRET, _H, r"(?i:\bbearer)\s+([A-Za-z0-9._~+/-]{16,}=*)", validator=_opaque_token, group=1),
    _Spec("BEARER_TOKEN", SECRET, _H, r"(?i:\bauthorization)\s*[:=]\s*(?i:basic)\s+([A-Za-z0-9+/]{8,}={0,2})", group=1),
    _Spec("PASSWORD", SECRET, _H,
          r"(?i)\b[a-z0-9_-]*?(?:password|passwd|pwd|passphrase|secret|secret_key|api_key|apikey|access_key"
          r"|access_token|auth_token|refresh_token|client_secret|private_key)[\"']?\s*[:=]\s*[\"']?"
          r"([^\s\"'<>;,]{4,})", validator=_password_value, group=1),
)  # fmt: skip

_INJ_FILLER = r"(?:(?:all|any|every|each|the|of|your|my|these|those|that|its|previous|prior|above)\s+){0,4}"
_INJ_TARGET = (
    r"(?:instructions?|prompts?|directions?|directives?|rules|guidelines|commands?|context|messages?|guidance"
    r"|constraints|programming|orders|training)"
)

_INJECTION_SPECS: Final = (
    _Spec("PROMPT_INJECTION", INJECTION, _H,
          r"(?i)\b(?:ignore|disregard|forget|bypass|override|overlook|neglect|abandon|discard)\s+" + _INJ_FILLER
          + r"(?:previous|prior|above|earlier|preceding|past|former|original|initial|foregoing|system|old|existing"
          r"|developer|safety)\s+(?:\w+\s+){0,2}?" + _INJ_TARGET + r"\b"
          r"|(?i)\b(?:ignore|disregard)\s+(?:all|any|every)\s+(?:\w+\s+)?(?:instructions|rules|guidelines)\b"
          r"|(?i)\bforget\s+(?:everything|all)\s+(?:(?:you(?:'ve|\s+have|\s+were)?\s+(?:been\s+)?"
          r"(?:told|taught|learned|instructed))|above|before|previously|that\s+came\s+before|i\s+(?:said|told\s+you))"
          r"|(?i)\bnew\s+(?:system\s+)?instructions?\s*:"
          r"|(?i)\b(?:reveal|print|show|display|repeat|output|leak|dump|tell\s+me|what\s+(?:is|are|was|were))\s+"
          r"(?:me\s+)?your\s+(?:\w+\s+){0,2}?(?:system\s+prompt|initial\s+(?:prompt|instructions)"
          r"|hidden\s+(?:prompt|instructions)|original\s+(?:prompt|instructions)|instructions\s+above|secret\s+"
          r"instructions)"),
    _Spec("ROLE_INJECTION", INJECTION, _M,
          r"(?im)^[ \t>*]*(?:system|assistant|developer)[ \t]*:[ \t]*[A-Za-z']+[ \t,]+[A-Za-z']+[ \t,]+[A-Za-z']+"
          r"|(?i)(?:\n\n|^)(?:human|assistant)[ \t]*:[ \t]*(?:ignore|you|from|new|system|forget)"),
    # Case-sensitive "DAN" (the persona) inside otherwise case-insensitive alternatives.
    _Spec("JAILBREAK", INJECTION, _C,
          r"(?i:\bdo\s+anything\s+now\b)"
          r"|(?i:(?:you\s+are|you're|act\s+as|pretend\s+(?:to\s+be|you\s+are)|become|called|named|enable|activate"
          r"|enter|switch\s+to)\s+(?:now\s+)?(?:an?\s+)?)DAN\b|\bDAN\s+(?i:mode)\b"
          r"|(?i:\b(?:developer|god|jailbreak|unrestricted|evil|dan|chaos)\s+mode\s+(?:is\s+)?"
          r"(?:enabled|activated|on|engaged)\b)"
          r"|(?i:\b(?:enable|activate|enter|switch\s+to|turn\s+on)\s+(?:the\s+)?(?:developer|god|jailbreak|"
          r"unrestricted|dan)\s+mode\b)"
          r"|(?i:\b(?:act|respond|answer|behave|operate|reply|speak|talk|are\s+now|you're\s+now|will\s+now)\b"
          r"[^.\n]{0,30}?\b(?:without|no|free\s+from|unbound\s+by|not\s+bound\s+by)\s+(?:(?:any|all|your|of)\s+)?"
          r"(?:[\w']+\s+){0,2}(?:restrictions|limitations|filters|censorship|guidelines|boundaries|morals|ethics|limits)\b)"
          r"|(?i:\bpretend\s+(?:that\s+)?(?:you\s+(?:are|have)|to\s+be)\s+(?:an?\s+)?(?:unrestricted|unfiltered|"
          r"uncensored|evil|jailbroken|rogue)\b)"
          r"|(?i:\b(?:unfiltered|uncensored|jailbroken|unrestricted|amoral)\s+(?:ai|assistant|model|chatbot|llm|gpt|"
          r"version\s+of\s+(?:yourself|chatgpt|claude))\b)"
          r"|(?i:\b(?:no\s+longer|not)\s+bound\s+by\s+(?:any\s+|your\s+)?(?:[\w']+\s+)?(?:rules|guidelines|policies|"
          r"restrictions|ethics)\b)"
          r"|(?i:strive\s+to\s+avoid\s+norms|always\s+intelligent\s+and\s+machiavellian)"),
    _Spec("DELIMITER_INJECTION", INJECTION, _H,
          r"(?im)^[ \t]*(?:-{3,}|={3,}|\*{3,}|#{3,}|~{3,})[ \t]*(?:system|sys|instructions?|new\s+instructions?"
          r"|admin|developer|override)[ \t]*(?::|-{3,}|={3,}|#{3,}|\])"
          r"|(?im)^[ \t]*(?:-{3,}|={3,}|#{3,})[ \t]*(?:end\s+of\s+(?:system\s+|user\s+)?(?:prompt|instructions|"
          r"context|input)|begin\s+(?:system|new|admin)\s+(?:prompt|instructions))"
          r"|<\|(?:im_start|im_end|im_sep|endoftext|system|user|assistant|start_header_id|end_header_id|eot_id"
          r"|begin_of_text)\|>|\[/?INST\]|<<\s*/?SYS\s*>>|(?i)</?system(?:_prompt)?>|\[(?:SYSTEM|system)\]"),
)  # fmt: skip

_ALL_SPECS: Final = _SECRET_SPECS + _PII_SPECS + _INJECTION_SPECS

PII_TYPES: Final = frozenset(s.type for s in _PII_SPECS)
SECRET_TYPES: Final = frozenset(s.type for s in _SECRET_SPECS)
INJECTION_TYPES: Final = frozenset(s.type for s in _INJECTION_SPECS)


def _options(max_mem: int) -> Any:
    opts = re2.Options()
    opts.max_mem = max_mem
    opts.log_errors = False
    return opts


# A single RE2::Set pass (one DFA over the text for every pattern at once) says which patterns match at all;
# only those run finditer. The Set's DFA does not bail out on slow inputs (many-match mode), it only fails when
# one state cannot fit the budget, so the budget is generous.
_PATTERN_MAX_MEM: Final = 32 << 20
_SET_MAX_MEM: Final = 256 << 20


@dataclass(frozen=True, slots=True)
class _Compiled:
    spec: _Spec
    regex: Any
    order: int


# Lone surrogates cannot be encoded to UTF-8 (which RE2 needs); each becomes U+FFFD, so the length, and
# therefore every offset, is unchanged.
def _surrogate_to_fffd(exc: UnicodeError) -> tuple[bytes, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    return "\ufffd".encode() * (exc.end - exc.start), exc.end  # the UTF-8 encoder takes only ASCII str back


_SURROGATE_HANDLER: Final = "leanllm_otel.surrogate_to_fffd"
codecs.register_error(_SURROGATE_HANDLER, _surrogate_to_fffd)


def sanitize(text: str) -> str:
    """Return ``text`` with lone surrogates replaced by U+FFFD (same length; a no-op for valid text)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", _SURROGATE_HANDLER).decode("utf-8")
    return text


# JSON / C-style escape sequences. In JSON text (tool arguments, a pasted payload) the characters before a value are
# often an escape ("\\n4111 ...", "\\uff1aAKIA..."), which defeats every word-boundary anchor. The escape view
# blanks each escape to whitespace of the same length (a line break stays a line break, for ``^`` anchors), and
# the scan keeps the candidates of both the text and its view: never fewer findings than the text alone gives.
_ESCAPE: Final = re2.compile(r"\\(?:u[0-9A-Fa-f]{4}|[nrtbf\"\\/])", _options(1 << 20))
_ESCAPE_BLANKS: Final = {"n": " \n", "r": " \r", "t": "  "}


def escape_view(text: str) -> str | None:
    """``text`` with every escape sequence (``\\n``, ``\\"``, ``\\u00e9``) replaced by whitespace of the same length;
    None when it holds none. Offsets into the view are offsets into ``text``."""
    pieces: list[str] = []
    pos = 0
    for m in _ESCAPE.finditer(text):
        s, e = m.span()
        pieces.append(text[pos:s])
        pieces.append(_ESCAPE_BLANKS.get(text[s + 1], " " * (e - s)))
        pos = e
    if not pieces:
        return None
    pieces.append(text[pos:])
    return "".join(pieces)


def marker_for(finding: Finding) -> str:
    """The redaction marker for ``finding``: ``[PII:EMAIL]``, ``[SECRET:AWS_KEY]``, ``[CUSTOM:<NAME>]``."""
    return f"[{_MARKER_PREFIX.get(finding.category, finding.category.upper())}:{finding.type}]"


class Detector:
    """Scans text for PII, secrets and prompt-injection indicators; redacts PII and secrets.

    Thread-safe and reusable: all state is the compiled patterns. Build one per configuration (or use
    :func:`default_detector`) and share it.
    """

    __slots__ = ("_allow", "_config", "_gate", "_patterns")

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self._config = config or DetectorConfig()
        unknown = set(self._config.enabled_categories) - CATEGORIES
        if unknown:
            raise ValueError(f"unknown detector categories: {sorted(unknown)}")
        specs = [s for s in _ALL_SPECS if s.category in self._config.enabled_categories]
        opts = _options(_PATTERN_MAX_MEM)
        compiled: list[_Compiled] = []
        for name, pattern in self._config.extra_patterns.items():
            if not name or not isinstance(pattern, str):
                raise ValueError(f"extra pattern {name!r}: name must be non-empty and pattern a string")
            try:
                regex = re2.compile(pattern, opts)
            except re2.error as exc:
                raise ValueError(f"extra pattern {name!r} is not a valid RE2 pattern: {exc}") from None
            compiled.append(_Compiled(_Spec(name, CUSTOM, _M, pattern), regex, len(compiled)))
        for spec in specs:
            compiled.append(_Compiled(spec, re2.compile(spec.pattern, opts), len(compiled)))
        gate = re2.Set.SearchSet(_options(_SET_MAX_MEM))
        for comp in compiled:
            if gate.Add(comp.spec.pattern) != comp.order:
                raise RuntimeError("re2.Set index out of step with pattern order")  # pragma: no cover
        if compiled:
            gate.Compile()
        self._gate: Any = gate if compiled else None
        self._patterns: tuple[_Compiled, ...] = tuple(compiled)
        self._allow: frozenset[str] = frozenset(self._config.allowlist)

    @property
    def config(self) -> DetectorConfig:
        """The configuration this detector was built from."""
        return self._config

    def scan(self, text: str) -> list[Finding]:
        """Findings in ``text``, sorted by start, non-overlapping.

        Where candidates overlap, the winner is the higher category (secret > custom > pii > injection), then
        the longer match; a redactable winner's span is widened to the union of the redactable candidates it
        beat, so redaction never leaves a fragment of either. Offsets index :func:`sanitize` (text), which is
        ``text`` itself unless it holds lone surrogates.
        """
        return self._scan(sanitize(text))

    def redact(self, text: str) -> tuple[str, list[Finding]]:
        """Replace PII and secrets with markers; injection findings are reported but left in place.

        Returns the redacted text and the findings (offsets into the sanitized input, not the output).
        """
        text = sanitize(text)
        findings = self._scan(text)
        pieces: list[str] = []
        pos = 0
        for f in findings:
            if f.category == INJECTION:
                continue
            pieces.append(text[pos : f.start])
            pieces.append(marker_for(f))
            pos = f.end
        if not pieces:
            return text, findings
        pieces.append(text[pos:])
        return "".join(pieces), findings

    @staticmethod
    def summarize(findings: Iterable[Finding]) -> dict[str, int]:
        """Count findings by type (same as the module function :func:`summarize`)."""
        return summarize(findings)

    def _scan(self, text: str) -> list[Finding]:
        if not text or self._gate is None:
            return []
        redactable: list[tuple[int, int, int, _Compiled]] = []
        injections: list[tuple[int, int, int, _Compiled]] = []
        view = escape_view(text) if "\\" in text else None
        self._candidates(text, text, view, redactable, injections)
        if view is not None:
            self._candidates(view, text, None, redactable, injections)
        if not redactable and not injections:
            return []
        return _resolve(redactable, injections)

    def _candidates(
        self,
        text: str,
        original: str,
        view: str | None,
        redactable: list[tuple[int, int, int, _Compiled]],
        injections: list[tuple[int, int, int, _Compiled]],
    ) -> None:
        """Append the candidates found in ``text`` (``original`` or its escape view: same length, same offsets).

        With ``view`` (scanning the original text of a view), a candidate never starts inside an escape sequence:
        ``\\nbob@example.com`` yields ``bob@example.com``, so its redaction keeps the escape intact.
        """
        hits = self._gate.Match(text)
        if not hits:
            return
        allow = self._allow
        for index in sorted(hits):
            comp = self._patterns[index]
            spec = comp.spec
            sink = injections if spec.category == INJECTION else redactable
            group, validator, trim = spec.group, spec.validator, spec.trim
            for m in comp.regex.finditer(text):
                s, e = m.span(group) if group else m.span()
                if s < 0:
                    s, e = m.span()
                if view is not None:
                    while s < e and view[s] != text[s]:
                        s += 1
                if s >= e:
                    continue
                if validator is not None and not validator(text, s, e):
                    continue
                if trim is not None:
                    e = trim(text, s, e)
                if allow and original[s:e] in allow:
                    continue
                sink.append((s, e, comp.order, comp))


def _cluster(cands: list[tuple[int, int, int, _Compiled]], widen: bool) -> list[Finding]:
    """Group overlapping candidates; one finding per group (best category, then longest, then pattern order)."""
    out: list[Finding] = []
    if not cands:
        return out
    cands.sort(key=lambda c: (c[0], -c[1]))
    i, n = 0, len(cands)
    while i < n:
        cs, ce = cands[i][0], cands[i][1]
        best = cands[i]
        j = i + 1
        while j < n and cands[j][0] < ce:
            c = cands[j]
            ce = max(ce, c[1])
            if _better(c, best):
                best = c
            j += 1
        spec = best[3].spec
        s, e = (cs, ce) if widen else (best[0], best[1])
        out.append(Finding(spec.type, spec.category, spec.severity, s, e))
        i = j
    return out


def _better(a: tuple[int, int, int, _Compiled], b: tuple[int, int, int, _Compiled]) -> bool:
    ka = (_CATEGORY_RANK[a[3].spec.category], a[0] - a[1], a[2])
    kb = (_CATEGORY_RANK[b[3].spec.category], b[0] - b[1], b[2])
    return ka < kb


def _resolve(
    redactable: list[tuple[int, int, int, _Compiled]], injections: list[tuple[int, int, int, _Compiled]]
) -> list[Finding]:
    kept = _cluster(redactable, widen=True)
    inj = _cluster(injections, widen=False)
    if not inj:
        return kept
    if not kept:
        return inj
    # Drop injection findings that collide with a redacted span (the redacted content wins), then merge.
    survivors: list[Finding] = []
    k = 0
    for f in inj:
        while k < len(kept) and kept[k].end <= f.start:
            k += 1
        if k < len(kept) and kept[k].start < f.end:
            continue
        survivors.append(f)
    merged = kept + survivors
    merged.sort(key=lambda f: f.start)
    return merged


def summarize(findings: Iterable[Finding]) -> dict[str, int]:
    """Count findings by type: ``{"EMAIL": 2, "AWS_KEY": 1}`` (the exportable form; no text, no offsets)."""
    return dict(Counter(f.type for f in findings))


def max_severity(findings: Iterable[Finding]) -> Severity | None:
    """The highest severity among ``findings``, or ``None`` when there are none."""
    return max((f.severity for f in findings), default=None)


_default: Detector | None = None
_default_lock = threading.Lock()


def default_detector() -> Detector:
    """A process-wide :class:`Detector` with the default configuration, compiled on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Detector()
    return _default


class StreamScanner:
    """Incremental scanning of streamed text.

    Feeds chunks; keeps an overlap window (``overlap`` characters) so a match straddling two chunks is found
    once. A finding that touches the end of the buffered text may still grow with the next chunk, so it is held
    back (up to ``max_hold`` characters) until text follows it or :meth:`finish` is called. Offsets are global
    (relative to the start of the stream).
    """

    __slots__ = ("_base", "_buf", "_detector", "_emitted_end", "_findings", "_max_hold", "_overlap")

    def __init__(self, detector: Detector, overlap: int = 256, max_hold: int = 16384) -> None:
        if overlap < 1 or max_hold < overlap:
            raise ValueError("overlap must be >= 1 and max_hold >= overlap")
        self._detector = detector
        self._overlap = overlap
        self._max_hold = max_hold
        self._buf = ""
        self._base = 0  # global offset of _buf[0]
        self._emitted_end = 0  # global end of the last reported finding
        self._findings: list[Finding] = []

    def feed(self, chunk: str) -> list[Finding]:
        """Add ``chunk``; return findings not reported before (global offsets)."""
        if not chunk:
            return []
        self._buf += sanitize(chunk)
        return self._advance(final=False)

    def finish(self) -> list[Finding]:
        """Report what is still held in the window; the scanner is then empty (further feeds start afresh)."""
        out = self._advance(final=True)
        self._base += len(self._buf)
        self._buf = ""
        return out

    @property
    def findings(self) -> list[Finding]:
        """Every finding reported so far, in stream order."""
        return list(self._findings)

    def _advance(self, final: bool) -> list[Finding]:
        buf, base = self._buf, self._base
        size = len(buf)
        stable_until = size if final else size - self._overlap
        hold_from = size
        new: list[Finding] = []
        for f in self._detector._scan(buf):
            gstart = f.start + base
            if gstart < self._emitted_end:
                continue  # a fragment of something already reported
            if f.end > stable_until and size - f.start < self._max_hold:
                hold_from = min(hold_from, f.start)
                continue
            g = Finding(f.type, f.category, f.severity, gstart, f.end + base)
            new.append(g)
            self._emitted_end = g.end
        keep_from = min(max(0, size - self._overlap), hold_from)
        if keep_from:
            self._buf = buf[keep_from:]
            self._base = base + keep_from
        self._findings.extend(new)
        return new
