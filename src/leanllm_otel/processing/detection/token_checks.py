"""Validators for secret candidates: plain Python over the matched token (``check(text, start, end) -> bool``)."""

from __future__ import annotations


def has_digit_and_letter(text: str, s: int, e: int) -> bool:
    tok = text[s:e]
    return any(c.isdigit() for c in tok) and any(c.isalpha() for c in tok)


def _longest_alnum_run(tok: str) -> str:
    best_start = best_len = start = 0
    for i, c in enumerate(tok):
        if not (c.isascii() and c.isalnum()):
            start = i + 1
        elif i + 1 - start > best_len:
            best_start, best_len = start, i + 1 - start
    return tok[best_start : best_start + best_len]


def openai_key(text: str, s: int, e: int) -> bool:
    """``sk-...`` with a long random run (``sk-learn-pipeline-2024`` is a slug of short words, not a key)."""
    if text.startswith("sk-ant-", s):
        return False
    run = _longest_alnum_run(text[s + 3 : e])
    has_digit = any(c.isdigit() for c in run)
    has_upper = any(c.isupper() for c in run)
    has_lower = any(c.islower() for c in run)
    return len(run) >= 16 and has_digit + has_upper + has_lower >= 2 and has_digit


def opaque_token(text: str, s: int, e: int) -> bool:
    tok = text[s:e]
    has_lower = any(c.islower() for c in tok)
    has_upper = any(c.isupper() for c in tok)
    return any(c.isdigit() for c in tok) or (has_lower and has_upper and len(tok) >= 20)


def random_looking(text: str, s: int, e: int) -> bool:
    """At least two of digits / upper case / lower case, and not one character repeated."""
    tok = text[s:e]
    kinds = any(c.isdigit() for c in tok) + any(c.isupper() for c in tok) + any(c.islower() for c in tok)
    return kinds >= 2 and len(set(tok)) > 6


def _is_identifier_path(tok: str) -> bool:
    return all(part.isidentifier() for part in tok.split("."))


def password_value(text: str, s: int, e: int) -> bool:
    tok = text[s:e]
    if tok[0] in "/~$<{%([*.&@#!`\\" or any(c in tok for c in "()[]{}"):
        return False  # paths, templates, code expressions, masks
    if len(set(tok)) <= 2:  # ****, xxxx
        return False
    has_digit = any(c.isdigit() for c in tok)
    return not (_is_identifier_path(tok) and not has_digit)  # variable names, settings.SECRET_KEY, None


def conn_password(text: str, s: int, e: int) -> bool:
    # scheme://user:PASSWORD@host — the password sits after the last ':' before '@'.
    creds = text[s:e].split("://", 1)[-1].rsplit("@", 1)[0]
    password = creds.split(":", 1)[1] if ":" in creds else ""
    return bool(password) and password[0] not in "$<{*%" and len(set(password)) > 1
