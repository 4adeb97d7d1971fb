"""Validators: plain Python over a matched span (and a few characters around it), never a regex.

A validator is ``check(text, start, end) -> bool``; the engine calls it for every candidate span an RE2 pattern
produced and drops the candidate when it answers ``False``. Context words are read from a bounded window before
the span, so a validator's cost never depends on the length of the text.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Final

from leanllm_otel.processing.detection.checksums import (
    aadhaar_ok,
    bsn_ok,
    codice_fiscale_ok,
    cpf_ok,
    digits,
    iban_ok,
    insee_ok,
    luhn_ok,
    nif_ok,
)

Validator = Callable[[str, int, int], bool]

_PUNCT_TO_SPACE: Final = str.maketrans({c: " " for c in "\"'()[]{}<>:;,.!?=#/\\|*_-+&%$€£¥\t\n\r"})


def words_before(text: str, start: int, window: int = 32) -> list[str]:
    """Lower-cased words in the ``window`` characters before ``start`` (any non-alphanumeric splits words)."""
    segment = text[max(0, start - window) : start].lower().replace("s/n", "sn").replace("n°", "no ")
    if not segment.isascii():
        segment = "".join(c if c.isalnum() else " " for c in segment)
    return segment.translate(_PUNCT_TO_SPACE).split()


def _ascii_alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _has_word(words: list[str], vocabulary: frozenset[str]) -> bool:
    if not vocabulary.isdisjoint(words):
        return True
    for w in words:
        if w[-1] == "s" and w[:-1] in vocabulary:  # plurals: "phones", "numbers"
            return True
        if not w.isascii() and any(k in w for k in vocabulary if not k.isascii()):
            return True  # scripts written without spaces (Japanese, Chinese): the word is part of one run
    return False


# ------------------------------------------------------------------------------------------------ cards, IBAN


_MAESTRO: Final = frozenset({5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763, 604, 6390})


def card_brand_ok(ds: str) -> bool:
    """Whether ``ds`` (digits only) has the length and prefix of a payment card network."""
    n = len(ds)
    if not 12 <= n <= 19:
        return False
    two, four = int(ds[:2]), int(ds[:4])
    if ds[0] == "4":  # Visa
        return n in (13, 16, 19)
    if two in (34, 37):  # Amex
        return n == 15
    if 300 <= int(ds[:3]) <= 305 or two in (36, 38, 39):  # Diners
        return 14 <= n <= 19
    if two == 35:  # JCB (issued 3528-3589; test generators use all of 35xx)
        return 16 <= n <= 19
    if four in (2131, 1800):  # JCB 15-digit
        return n == 15
    if 51 <= two <= 55 or 2221 <= four <= 2720:  # Mastercard
        return n == 16
    if 2200 <= four <= 2204:  # Mir
        return 16 <= n <= 19
    if ds.startswith(("6011", "65")) or 644 <= int(ds[:3]) <= 649 or two == 62:  # Discover, UnionPay
        return 16 <= n <= 19
    if two in (56, 57, 58):  # Maestro; 13-15 digits with these prefixes are mostly EAN-13 barcodes
        return n == 12 or 16 <= n <= 19
    if four in _MAESTRO:
        return 12 <= n <= 19
    return False


def credit_card(text: str, s: int, e: int) -> bool:
    ds = digits(text[s:e])
    return card_brand_ok(ds) and luhn_ok(ds)


def iban(text: str, s: int, e: int) -> bool:
    # The greedy pattern may swallow a following 1-4 character token ("... 3000 THIS"); drop trailing
    # space-separated groups until the checksum holds.
    return iban_span(text, s, e) > s


def iban_span(text: str, s: int, e: int) -> int:
    groups = text[s:e].split(" ")
    while groups and not iban_ok("".join(groups)):
        groups.pop()
    return s + len(" ".join(groups)) if groups else s


# ------------------------------------------------------------------------------------------------ national IDs

_SSN_WORDS: Final = frozenset({"ssn", "social", "security", "ss", "taxpayer", "tin", "itin"})


def _ssn_digits_ok(d: str) -> bool:
    if len(d) != 9:
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def us_ssn(text: str, s: int, e: int) -> bool:
    """Dashed ``123-45-6789`` on its own; the spaced form (also how dimensions and rows print) needs a context word."""
    span = text[s:e]
    if not _ssn_digits_ok(digits(span)):
        return False
    if "-" in span and text[e : e + 1] != "-" and text[s - 1 : s] != "-":
        return True
    return _has_word(words_before(text, s, 40), _SSN_WORDS)


_NIN_BAD_PREFIXES: Final = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})
_NIN_WORDS: Final = frozenset({"nino", "nin", "ni", "national", "insurance"})


def uk_nin(text: str, s: int, e: int) -> bool:
    """HMRC's rules (prefix letters, suffix A-D) on their own; a reserved prefix or other suffix next to the words."""
    compact = text[s:e].replace(" ", "")
    if len(compact) != 9:
        return False
    strict = compact[:2] not in _NIN_BAD_PREFIXES and compact[:1] not in "DFIQUV" and compact[8] in "ABCD"
    return strict or _has_word(words_before(text, s, 40), _NIN_WORDS)


def fr_insee(text: str, s: int, e: int) -> bool:
    return insee_ok(text[s:e])


def es_nif(text: str, s: int, e: int) -> bool:
    return nif_ok(text[s:e])


def it_fiscal_code(text: str, s: int, e: int) -> bool:
    return codice_fiscale_ok(text[s:e])


def nl_bsn(text: str, s: int, e: int) -> bool:
    return bsn_ok(text[s:e])


def br_cpf(text: str, s: int, e: int) -> bool:
    return cpf_ok(text[s:e])


_AADHAAR_WORDS: Final = frozenset({"aadhaar", "aadhar", "adhaar", "uidai", "uid", "आधार"})


def in_aadhaar(text: str, s: int, e: int) -> bool:
    """Verhoeff-valid twelve digits spaced 4-4-4; any grouping (and a Luhn check digit) next to "Aadhaar"."""
    words = words_before(text, s, 40)
    if _has_word(words, _AADHAAR_WORDS):
        return aadhaar_ok(text[s:e], lenient=True)
    span = text[s:e]
    if "-" in span or _has_word(words[-3:], NOT_PHONE_WORDS) or _touches_number(text, s, e):
        return False
    return aadhaar_ok(span)


# ------------------------------------------------------------------------------------------------ phones

# Words before a number that make it a phone number, in the languages of the locales the tests cover.
PHONE_WORDS: Final = frozenset(
    {"phone", "telephone", "tel", "tele", "mobile", "mob", "cell", "cellphone", "call", "ring", "text", "sms",
     "whatsapp", "signal", "fax", "hotline", "dial", "reach", "contact", "number", "landline", "ph", "mobil",
     "telefon", "telefonnummer", "handy", "handynummer", "anrufen", "ruf", "rufen", "rufnummer", "erreichbar",
     "festnetz", "téléphone", "tél", "portable", "appelez", "appeler", "appelle", "numéro", "joindre",
     "joignable", "teléfono", "telefono", "móvil", "movil", "llama", "llame", "llamar", "llámame", "llamame",
     "número", "numero", "celular", "telefone", "ligue", "liga", "ligar", "contato", "whats", "zap", "cellulare",
     "chiama", "chiamare", "chiamami", "contattare", "telefoon", "telefoonnummer", "mobiel", "bel", "bellen",
     "nummer", "callback", "rappeler", "rappelez", "rappelle", "composer", "composez", "contacter", "contactez",
     "texto", "rückruf", "zurückrufen", "erreichen", "kontakt", "contactar", "marcar", "retornar", "retorne",
     "contatar", "richiamare", "richiamami", "contattami", "terugbellen", "bereiken", "bereikbaar", "电话", "電話",
     "携帯", "連絡", "連絡先", "電話番号", "番号", "手机", "फोन", "मोबाइल"}
)  # fmt: skip

# Words before a number that make it something else: order numbers, references, serials, book numbers, money.
NOT_PHONE_WORDS: Final = frozenset(
    {"order", "invoice", "ref", "reference", "ticket", "case", "tracking", "serial", "sn", "s/n", "part", "sku",
     "po", "isbn", "issn", "ean", "upc", "gtin", "iban", "account", "acct", "konto", "rechnung", "bestellung",
     "bestellnummer", "auftrag", "kundennummer", "artikel", "commande", "facture", "pedido", "factura", "ordine",
     "fattura", "bestelling", "factuur", "version", "build", "release", "id", "batch", "lot", "model", "seriennummer",
     "total", "amount", "betrag", "summe", "preis", "price", "prix", "precio", "eur", "usd", "chf", "gbp",
     "doi", "patent", "transaction", "txn", "receipt", "quittung", "vorgang", "aktenzeichen", "card", "karte",
     "kreditkarte", "carte", "tarjeta", "cartão", "cartao", "carta", "visa", "mastercard", "amex", "ssn", "bsn",
     "cpf", "nif", "nie", "aadhaar", "insee", "nir", "codice", "fiscale", "vat", "ust", "steuernummer"}
)  # fmt: skip

# ITU country calling codes (for "00" international prefixes, where a bare run of digits is otherwise ambiguous).
_CALLING_CODES_TEXT: Final = (
    "1 7 20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 61 62 63 64 65 66 81 82 "
    "84 86 90 91 92 93 94 95 98 211 212 213 216 218 220 221 222 223 224 225 226 227 228 229 230 231 232 233 234 235 "
    "236 237 238 239 240 241 242 243 244 245 246 248 249 250 251 252 253 254 255 256 257 258 260 261 262 263 264 "
    "265 266 267 268 269 290 291 297 298 299 350 351 352 353 354 355 356 357 358 359 370 371 372 373 374 375 376 "
    "377 378 380 381 382 383 385 386 387 389 420 421 423 500 501 502 503 504 505 506 507 508 509 590 591 592 593 "
    "594 595 596 597 598 599 670 672 673 674 675 676 677 678 679 680 681 682 683 685 686 687 688 689 690 691 692 "
    "850 852 853 855 856 880 886 960 961 962 963 964 965 966 967 968 970 971 972 973 974 975 976 977 992 993 994 "
    "995 996 998"
)
_CALLING_CODES: Final = frozenset(_CALLING_CODES_TEXT.split())


def _national_digit_count(span: str) -> int:
    # "(0)" is the trunk prefix written after a country code; it is not dialled from abroad.
    return len(digits(span.replace("(0)", "")))


def _extension_start(span: str) -> int:
    for marker in ("x", "ext", "#"):
        i = span.lower().find(marker)
        if i > 0:
            return i
    return len(span)


def _phone_context(text: str, s: int) -> tuple[bool, bool]:
    words = words_before(text, s, 32)
    return _has_word(words, PHONE_WORDS), _has_word(words[-3:], NOT_PHONE_WORDS)


def _touches_number(text: str, s: int, e: int) -> bool:
    """Whether the span continues a longer number ("1.234.567,89", "v10.0.1", "ISBN-978-...")."""
    before, after = text[s - 2 : s] if s >= 2 else text[:s], text[e : e + 2]
    glued_before = len(before) == 2 and before[1] in ".,-/" and _ascii_alnum(before[0])
    glued_after = len(after) == 2 and after[0] in ".,-/:" and after[1].isdigit()
    return glued_before or glued_after or _ascii_alnum(text[s - 1 : s]) or _ascii_alnum(text[e : e + 1])


def phone_international(text: str, s: int, e: int) -> bool:
    """``+CC ...`` or ``00CC ...``: 8-15 national digits; ``00`` needs a real calling code."""
    span = text[s:e]
    if _ascii_alnum(text[s - 1 : s]):
        return False
    body = span[: _extension_start(span)]
    n = _national_digit_count(body)
    if not 8 <= n <= 15:
        return False
    after = text[e : e + 2]
    if len(after) == 2 and after[0] in ".," and after[1].isdigit():
        return False  # +12.345.678,90: a signed amount
    phone, not_phone = _phone_context(text, s)
    if span.startswith("00"):
        if phone and not not_phone:
            return True
        ds = digits(body)[2:]
        return n >= 11 and not not_phone and any(ds.startswith(cc) for cc in _CALLING_CODES)
    return not not_phone or phone


def phone_nanp(text: str, s: int, e: int) -> bool:
    """North American ``(415) 555-2671`` / ``415-555-2671``: kept out of order numbers and longer digit runs."""
    if _touches_number(text, s, e):
        return False
    phone, not_phone = _phone_context(text, s)
    return phone or not not_phone


def phone_national(text: str, s: int, e: int) -> bool:
    """National formats (trunk ``0``, area codes in brackets, locale groupings) with 9-12 digits.

    Written with separators or brackets it is a phone number unless a word before it says order, serial,
    amount, ...; written as one run of digits it is one only after a phone word ("tel", "Handy", "portable").
    """
    span = text[s:e]
    ds = digits(span[: _extension_start(span)])
    if not 9 <= len(ds) <= 12 or ds.startswith("00") or _touches_number(text, s, e):
        return False
    phone, not_phone = _phone_context(text, s)
    if phone:
        return True
    grouped = any(c in span for c in " -./()")
    return grouped and not not_phone


def phone_after_word(text: str, s: int, e: int) -> bool:
    """A number right after a phone word (the pattern matched the word): 8-15 digits, not an order or amount."""
    n = _national_digit_count(text[s:e][: _extension_start(text[s:e])])
    if not 8 <= n <= 15 or _touches_number(text, s, e):
        return False
    return not _has_word(words_before(text, s, 32)[-3:], NOT_PHONE_WORDS)


# ------------------------------------------------------------------------------------------------ email, IP

_FILE_TLDS: Final = frozenset(
    {"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "js", "ts", "css", "py", "txt", "json", "lock"}
)


def email(text: str, s: int, e: int) -> bool:
    match = text[s:e]
    tld = match.rsplit(".", 1)[-1].lower()
    if tld in _FILE_TLDS:  # icon@2x.png, retina assets
        return False
    # scp-style git remotes (git@github.com:org/repo.git) are not a person's address
    return not (match.startswith("git@") and text[e : e + 1] == ":")


# Words after which a dotted quad is a version, an OID or a section number, not an address.
_VERSION_WORDS: Final = frozenset(
    {"v", "v.", "ver", "ver.", "version", "versions", "release", "build", "rev", "revision", "firmware", "sdk",
     "package", "section", "sec.", "chapter", "clause", "paragraph", "step", "item", "rule", "figure", "table", "§",
     "oid", "oids", "arc", "object", "identifier", "mib", "snmp", "asn.1", "upgrade", "upgraded", "patch", "kernel",
     "driver", "bios", "app", "library"}
)  # fmt: skip


_PRIVATE_FIRST_OCTETS: Final = frozenset({10, 100, 169, 172, 192})


def ipv4(text: str, s: int, e: int) -> bool:
    ip = text[s:e]
    if ip.startswith("127.") or ip in ("0.0.0.0", "255.255.255.255"):
        return False
    after = text[e : e + 2]
    before = text[max(0, s - 2) : s]
    if (len(after) == 2 and after[0] in ".-" and after[1].isdigit()) or (
        len(before) == 2 and before[1] == "." and before[0].isdigit()
    ):
        return False  # part of a longer dotted sequence (1.2.3.4.5, 10.0.19045.3693)
    if before[-1:] in ("v", "V"):
        return False  # v1.2.3.4
    octets = [int(o) for o in ip.split(".")]
    if octets[0] <= 2 and max(octets[1:]) < 100:
        return False  # 2.5.4.3, 1.3.6.1.4: OID arcs far more often than hosts in 1.x and 2.x
    if max(octets) < 32 and len(set(octets)) > 1 and octets[0] not in _PRIVATE_FIRST_OCTETS:
        return False  # 4.2.1.0, 3.12.1.2: four-part versions (8.8.8.8 and private ranges stay addresses)
    words = text[max(0, s - 24) : s].lower().replace(":", " ").replace("=", " ").split()
    return not (words and words[-1].strip("\"'(") in _VERSION_WORDS)


def ipv6(text: str, s: int, e: int) -> bool:
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
