"""Credentials in names, URLs and free text: the one home of these rules.

- Names: :func:`is_secret_name` decides which keyword arguments, headers, query parameters and settings carry
  credentials (hook snapshots drop them, error messages lose their values, URLs shown to users mask them).
- URLs: :func:`strip_url` (no user-info; optionally no query string and fragment), :func:`mask_url` (a URL for
  display, passwords as ``***``), :func:`url_credentials` (the user-info and query values a URL carries).
- Text: :func:`forms` lists the spellings a credential takes when a provider or gateway echoes a request
  (raw, percent-encoded, JSON-escaped, base64, HTTP Basic: :func:`url_basic_forms`); :func:`secret_spans` finds
  them, and the user-info, query strings and fragments of URLs, in a text; :func:`scrub` replaces them with
  ``[REDACTED]``.

Scanning untrusted text (an error message) uses google-re2 only.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Final
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit, urlunsplit

import re2

__all__ = [
    "HEADER_KWARGS",
    "MIN_SECRET_CHARS",
    "REDACTED",
    "URL_KWARGS",
    "basic_forms",
    "forms",
    "is_secret_name",
    "mask_url",
    "merge",
    "scrub",
    "secret_spans",
    "strip_url",
    "url_basic_forms",
    "url_credentials",
]

REDACTED: Final = "[REDACTED]"
MIN_SECRET_CHARS: Final = 4  # shorter values are not looked for in text: they would cut ordinary words
URL_KWARGS: Final = ("api_base", "base_url")
HEADER_KWARGS: Final = ("extra_headers", "headers")

# A name carries a credential when it contains one of these anywhere ("client_secret", "X-Api-Key" after
# lowering is "x-api-key": see the segments) ...
_SECRET_WORDS: Final = (
    "secret", "password", "passwd", "passphrase", "credential", "authorization", "apikey", "api_key", "bearer",
    "cookie", "signature", "private_key", "access_key",
)  # fmt: skip
# ... or one of these as a whole segment (split at "_", "-", ".", spaces and camelCase humps), so that
# "max_tokens", "top_k" and "author" are not secrets while "auth_token", "x-api-key" and "apiKey" are.
_SECRET_SEGMENTS: Final = frozenset({"key", "token", "auth", "pwd", "pass", "sig", "jwt", "headers"})


def _segments(name: str) -> Iterator[str]:
    word: list[str] = []
    previous = ""
    for ch in name:
        if not ch.isalnum():
            if word:
                yield "".join(word).lower()
                word = []
        elif ch.isupper() and previous.islower() and word:
            yield "".join(word).lower()
            word = [ch]
        else:
            word.append(ch)
        previous = ch
    if word:
        yield "".join(word).lower()


def is_secret_name(name: str) -> bool:
    """True for names of values that are, or may carry, credentials (``api_key``, ``*_token``, headers, ...)."""
    lowered = name.lower()
    if any(word in lowered for word in _SECRET_WORDS):
        return True
    return any(segment in _SECRET_SEGMENTS for segment in _segments(name))


# --- URLs ----------------------------------------------------------------------------------------------------


def strip_url(url: str, keep_query: bool) -> str:
    """``url`` without ``user:password@`` (and, unless ``keep_query``, without query string and fragment).

    A URL that cannot be parsed becomes ``""`` when the query goes (nothing of it is trusted), else stays as is.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url if keep_query else ""
    netloc = parts.netloc.rsplit("@", 1)[1] if "@" in parts.netloc else parts.netloc
    if keep_query:
        if netloc == parts.netloc:
            return url
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``; safe on malformed input (it over-masks, never leaks).

    Everything between ``user:`` and the *last* ``@`` is masked, so an unescaped ``@``, ``/`` or ``#`` inside a
    password cannot leave a fragment of it visible. Query parameters with a secret name are masked too.
    """
    masked = _mask_query(url)
    scheme, sep, rest = masked.partition("://")
    if not sep or "@" not in rest:
        return masked
    userinfo, _, hostpart = rest.rpartition("@")
    if ":" not in userinfo:
        return masked
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostpart}"


def _mask_query(url: str) -> str:
    head, sep, query = url.partition("?")
    if not sep:
        return url
    query, hash_sign, fragment = query.partition("#")
    pairs = []
    for pair in query.split("&"):
        name, eq, _ = pair.partition("=")
        pairs.append(f"{name}=***" if eq and is_secret_name(name) else pair)
    return f"{head}?{'&'.join(pairs)}{hash_sign}{fragment}"


def url_credentials(url: str) -> list[str]:
    """The user name, password and every query / fragment parameter value ``url`` carries, as written and decoded."""
    try:
        parts = urlsplit(url)
        username, password = parts.username, parts.password
    except ValueError:
        return []
    found: list[str] = []
    for value in (username, password):
        if value:
            found.extend((value, unquote(value)))
    for section in (parts.query, parts.fragment):
        for pair in section.split("&"):
            _, eq, value = pair.partition("=")
            if eq and value:
                found.append(value)
        found.extend(value for _, value in parse_qsl(section, keep_blank_values=False))
    return found


# --- the spellings of a credential in echoed text ------------------------------------------------------------


def _b64(text: str) -> list[str]:
    raw = text.encode("utf-8", "surrogatepass")
    standard = base64.b64encode(raw).decode("ascii")
    urlsafe = base64.urlsafe_b64encode(raw).decode("ascii")
    return [standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("=")]


def _lower_hex(text: str) -> str:
    if "%" not in text:
        return text
    pieces = text.split("%")
    return pieces[0] + "".join("%" + piece[:2].lower() + piece[2:] for piece in pieces[1:])


def forms(value: str) -> set[str]:
    """``value`` as an echoed request may spell it: raw, decoded, percent-encoded (upper and lower hex, ``+`` for
    spaces or not), JSON-escaped and base64 (standard and URL-safe, padded or not)."""
    spellings = {value, unquote(value), json.dumps(value)[1:-1], *_b64(value)}
    for encoded in (quote(value, safe=""), quote(value), quote_plus(value)):
        spellings.update((encoded, _lower_hex(encoded)))
    return {s for s in spellings if len(s) >= MIN_SECRET_CHARS}


def url_basic_forms(url: str) -> set[str]:
    """HTTP clients send a URL's user-info as ``Authorization: Basic base64(user:password)``: those spellings."""
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return set()
    return basic_forms(user, password) if user is not None and password is not None else set()


def basic_forms(user: str, password: str) -> set[str]:
    """The ``Authorization: Basic`` credential of ``user:password`` (as written in a URL and decoded)."""
    spellings: set[str] = set()
    for u, p in ((user, password), (unquote(user), unquote(password))):
        spellings.update(_b64(f"{u}:{p}"))
    return spellings


# --- finding and replacing them in text ----------------------------------------------------------------------

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = 8 << 20
_RE2_OPTIONS.log_errors = False
# A URL with a scheme; the part after "://" up to the first space or quote.
_URL: Final = re2.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,30}://[^\s\"'<>`]+", _RE2_OPTIONS)
# A query or fragment parameter anywhere ("?api_key=...", "&sig=..."), also outside a full URL (an echoed path).
_PARAMETER: Final = re2.compile(r"[?&#;]([A-Za-z0-9_.\-\[\]]{1,64})=([^&#\s\"'<>`]+)", _RE2_OPTIONS)


def secret_spans(text: str, values: Iterable[str] = ()) -> list[tuple[int, int]]:
    """Where ``text`` holds one of ``values`` (any spelling already expanded by the caller), the user-info of a
    URL, the query string or fragment of a URL, or the value of a secret-named query parameter. Sorted, may
    overlap."""
    spans: list[tuple[int, int]] = []
    for value in values:
        if len(value) < MIN_SECRET_CHARS:
            continue
        start = text.find(value)
        while start >= 0:
            spans.append((start, start + len(value)))
            start = text.find(value, start + len(value))
    if "://" in text:
        for match in _URL.finditer(text):
            spans.extend(_url_parts(text, *match.span()))
    if "=" in text:
        for match in _PARAMETER.finditer(text):
            if is_secret_name(match.group(1)):
                spans.append(match.span(2))
    spans.sort()
    return spans


def _url_parts(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """The user-info (``user:password`` before ``@``), query string and fragment of the URL ``text[start:end]``."""
    authority = text.index("://", start, end) + 3
    stop = end
    for sep in "/?#":
        found = text.find(sep, authority, end)
        if found >= 0:
            stop = min(stop, found)
    at = text.rfind("@", authority, stop)
    if at > authority:
        yield authority, at
    query = text.find("?", authority, end)
    fragment = text.find("#", authority, end)
    first = min((p for p in (query, fragment) if p >= 0), default=-1)
    if first >= 0 and first + 1 < end:
        yield first + 1, end


def merge(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted spans with overlapping or touching ones joined."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def scrub(text: str, values: Iterable[str] = (), marker: str = REDACTED) -> str:
    """``text`` with every span of :func:`secret_spans` replaced by ``marker``."""
    spans = merge(secret_spans(text, values))
    if not spans:
        return text
    pieces: list[str] = []
    pos = 0
    for start, end in spans:
        pieces.append(text[pos:start])
        pieces.append(marker)
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)
