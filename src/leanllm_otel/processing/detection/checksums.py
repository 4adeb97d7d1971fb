"""Check-digit algorithms for structured identifiers; plain Python over an already matched string.

Each takes the candidate as written (separators allowed) and answers whether its check digits hold. None of them
is a regular expression: they run on the span an RE2 pattern matched, so their cost is bounded by that span.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "aadhaar_ok",
    "bsn_ok",
    "codice_fiscale_ok",
    "cpf_ok",
    "digits",
    "iban_ok",
    "insee_ok",
    "luhn_ok",
    "nif_ok",
    "verhoeff_ok",
]


def digits(s: str) -> str:
    """The ASCII digits of ``s``, in order."""
    return "".join(c for c in s if "0" <= c <= "9")


def luhn_ok(number: str) -> bool:
    """Luhn checksum over the digits of ``number`` (separators ignored)."""
    ds = digits(number)
    if not ds:
        return False
    total = 0
    for i, ch in enumerate(reversed(ds)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


IBAN_LENGTHS: Final = {
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
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum() or not iban.isascii():
        return False
    rearranged = iban[4:] + iban[:4]
    try:
        return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1
    except ValueError:
        return False


def insee_ok(candidate: str) -> bool:
    """French NIR (numéro de sécurité sociale): 13 characters, then the key ``97 - (n mod 97)``.

    Corsican departments ``2A``/``2B`` count as 19/18 for the key, as INSEE specifies.
    """
    s = "".join(c for c in candidate.upper() if c.isalnum())
    if len(s) != 15 or not s.isascii():
        return False
    body, key = s[:13], s[13:]
    if body[5:7] == "2A":
        body = body[:5] + "19" + body[7:]
    elif body[5:7] == "2B":
        body = body[:5] + "18" + body[7:]
    if not (body.isdigit() and key.isdigit()):
        return False
    return 97 - int(body) % 97 == int(key)


_NIF_LETTERS: Final = "TRWAGMYFPDXBNJZSQVHLCKE"


def nif_ok(candidate: str) -> bool:
    """Spanish DNI/NIF (8 digits + letter) or NIE (X/Y/Z + 7 digits + letter): the mod-23 control letter."""
    s = "".join(c for c in candidate.upper() if c.isalnum())
    if len(s) != 9 or not s.isascii():
        return False
    head, letter = s[:8], s[8]
    if head[0] in "XYZ":
        head = str("XYZ".index(head[0])) + head[1:]
    return head.isdigit() and _NIF_LETTERS[int(head) % 23] == letter


def bsn_ok(candidate: str) -> bool:
    """Dutch BSN: nine digits passing the eleven-test (weights 9..2, then -1)."""
    ds = digits(candidate)
    if len(ds) != 9 or ds == "000000000":
        return False
    total = sum((9 - i) * (ord(c) - 48) for i, c in enumerate(ds[:8])) - (ord(ds[8]) - 48)
    return total % 11 == 0


def cpf_ok(candidate: str) -> bool:
    """Brazilian CPF: eleven digits whose last two are the mod-11 check digits (all-same-digit numbers invalid)."""
    ds = digits(candidate)
    if len(ds) != 11 or len(set(ds)) == 1:
        return False
    nums = [ord(c) - 48 for c in ds]
    for n in (9, 10):
        total = sum(nums[i] * (n + 1 - i) for i in range(n))
        check = total * 10 % 11 % 10
        if check != nums[n]:
            return False
    return True


_VERHOEFF_D: Final = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 0, 6, 7, 8, 9, 5), (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7), (4, 0, 1, 2, 3, 9, 5, 6, 7, 8), (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2), (7, 6, 5, 9, 8, 2, 1, 0, 4, 3), (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)  # fmt: skip
_VERHOEFF_P: Final = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 5, 7, 6, 2, 8, 3, 0, 9, 4), (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7), (9, 4, 5, 3, 1, 2, 6, 8, 7, 0), (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5), (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)  # fmt: skip


def verhoeff_ok(number: str) -> bool:
    """Verhoeff checksum over the digits of ``number``."""
    ds = digits(number)
    if not ds:
        return False
    c = 0
    for i, ch in enumerate(reversed(ds)):
        c = _VERHOEFF_D[c][_VERHOEFF_P[i % 8][ord(ch) - 48]]
    return c == 0


def aadhaar_ok(candidate: str, lenient: bool = False) -> bool:
    """Indian Aadhaar: twelve digits, first 2-9, Verhoeff check digit.

    ``lenient`` (for a value written next to the word "Aadhaar", which is one whatever its check digit) also
    accepts a leading 1 and a Luhn check digit, as some generators (Faker's ``en_IN`` provider among them) make.
    """
    ds = digits(candidate)
    if len(ds) != 12:
        return False
    if lenient:
        return ds[0] != "0" and (verhoeff_ok(ds) or luhn_ok(ds))
    return ds[0] not in "01" and verhoeff_ok(ds)


# Codice fiscale: value of each character at an odd (1st, 3rd, ...) position; even positions count 0-9 / A=0..Z=25.
_CF_ODD: Final = (1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23)


def _cf_index(ch: str) -> int:
    if ch.isdigit():
        return ord(ch) - 48
    return ord(ch) - 65


def codice_fiscale_ok(candidate: str) -> bool:
    """Italian codice fiscale: 16 characters whose last letter is the check character."""
    s = candidate.upper()
    if len(s) != 16 or not s.isascii() or not s.isalnum():
        return False
    total = 0
    for i, ch in enumerate(s[:15]):
        idx = _cf_index(ch)
        if not 0 <= idx < 26:
            return False
        total += _CF_ODD[idx] if i % 2 == 0 else idx
    return chr(65 + total % 26) == s[15]
