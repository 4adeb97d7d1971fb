"""Builds ``multilocale_set.jsonl``: Faker-generated structured values inside sentences, and benign look-alikes.

    python tests/data/multilocale_build.py

Values come from Faker (``de_DE fr_FR es_ES it_IT pt_BR ja_JP en_GB en_IN nl_NL en_US``): phone numbers, IBANs,
cards, e-mail addresses and the national identifiers (UK NIN, French INSEE/NIR, Spanish NIF/NIE, Italian codice
fiscale, Dutch BSN, Brazilian CPF, Aadhaar, US SSN); secrets are random strings in each vendor's published shape.
Benign look-alikes are numbers that share a shape with those (dimensions, rows of figures, OIDs, four-part
versions, serial numbers, amounts in German and other notations, order numbers, ISBNs, EANs, DOIs, timestamps,
prices, slugs such as ``sk-learn-...``).

Two splits with different seeds *and* disjoint sentence templates: ``tune`` (the patterns may be adjusted to
it) and ``held`` (never used to adjust them; see ``tests/data/README.md``). Deterministic for a given Faker
version (pinned in ``constraints.txt``).

Each line: ``{"text", "value", "type" | "family", "locale", "label": 1 | 0, "split"}``.
"""

from __future__ import annotations

import calendar
import datetime as dt_
import json
import random
import string
from collections.abc import Callable
from pathlib import Path

from faker import Faker

OUT = Path(__file__).with_name("multilocale_set.jsonl")
_START, _END = dt_.datetime(2019, 1, 1), dt_.datetime(2025, 12, 31)
SEEDS = {"tune": 1001, "held": 2002}
PER_PAIR = {"tune": 18, "held": 22}
PER_BENIGN = {"tune": 30, "held": 36}

B62 = string.ascii_letters + string.digits
HEX = "0123456789abcdef"

# Sentence templates by language, in two disjoint pools. "{}" is the value.
PHONE_T: dict[str, dict[str, list[str]]] = {
    "en": {
        "tune": ["Call me at {} tomorrow.", "My phone number is {}.", "You can reach the office on {}.",
                 "Mobile: {}", "Text me on {} when you land.", "Call back on {} tonight.", "Dial {} for support."],
        "held": ["Please ring {} after 5pm.", "Contact number {} (ask for Sam).", "Tel. {}",
                 "The hotline is {} if anything breaks.", "WhatsApp me at {} please"],
    },
    "de": {
        "tune": ["Ruf mich unter {} an.", "Meine Telefonnummer ist {}.", "Handy: {}", "Rückruf bitte an {}",
                 "Kontakt: {}"],
        "held": ["Sie erreichen mich unter Tel. {}", "Bitte zurückrufen: Telefon {}", "Mobil {} (ab 18 Uhr)"],
    },
    "fr": {
        "tune": ["Appelez-moi au {}.", "Mon numéro de téléphone est le {}.", "Portable : {}",
                 "Rappelez-moi au {} ce soir.", "Composez le {} pour le support."],
        "held": ["Vous pouvez me joindre au {}", "Tél. {} (bureau)", "Merci de rappeler le {} demain."],
    },
    "es": {
        "tune": ["Llámame al {}.", "Mi teléfono es {}.", "Móvil: {}", "Marca el {} para soporte."],
        "held": ["Puedes llamar al {} por la tarde.", "Teléfono de contacto {}", "Tel {} (oficina)"],
    },
    "pt": {
        "tune": ["Me liga no {}.", "Meu telefone é {}.", "Celular: {}", "Retorne no {} por favor."],
        "held": ["Pode ligar para {} amanhã.", "Telefone para contato {}", "Whats {} (falar com Ana)"],
    },
    "it": {
        "tune": ["Chiamami al {}.", "Il mio numero di telefono è {}.", "Cellulare: {}", "Richiamami al {} domani."],
        "held": ["Puoi contattarmi al {}", "Tel. {} (ufficio)", "Per informazioni chiama il {}."],
    },
    "ja": {
        "tune": ["電話番号は{}です。", "携帯：{}", "Call me at {}."],  # noqa: RUF001
        "held": ["連絡先 {} までお願いします。", "Tel {}", "電話 {} (平日のみ)"],
    },
    "nl": {
        "tune": ["Bel me op {}.", "Mijn telefoonnummer is {}.", "Mobiel: {}", "Terugbellen op {} graag."],
        "held": ["Je kunt me bereiken op telefoon {}", "Tel. {} (kantoor)", "Graag terugbellen op {}."],
    },
}
LOCALE_LANG = {"en_US": "en", "en_GB": "en", "en_IN": "en", "de_DE": "de", "fr_FR": "fr", "es_ES": "es",
               "pt_BR": "pt", "it_IT": "it", "ja_JP": "ja", "nl_NL": "nl"}  # fmt: skip

GENERIC_T = {
    "tune": ["Here it is: {}", "please update the record with {} today", "the value was {} last time",
             "Copy this exactly: {} and send it back."],
    "held": ["For the form I used {} as requested.", "Saved {} in the notes.", "({}) is what support asked for",
             "FYI - {} - keep it safe"],
}

# National identifiers: the words a person writes next to them, per split.
ID_T: dict[str, dict[str, list[str]]] = {
    "UK_NIN": {"tune": ["My National Insurance number is {}.", "NI number: {}"],
               "held": ["NINO {} (for payroll)", "national insurance no. {}"]},
    "FR_INSEE": {"tune": ["Mon numéro de sécurité sociale est {}.", "N° INSEE : {}"],
                 "held": ["NIR {} pour la mutuelle", "numéro de sécu : {}", "Carte Vitale {}"]},
    "ES_NIF": {"tune": ["Mi DNI es {}.", "NIF: {}"], "held": ["Documento {} (DNI)", "con NIF {} a nombre de"]},
    "ES_NIE": {"tune": ["Mi NIE es {}.", "NIE: {}"], "held": ["Número de extranjero {}", "tarjeta NIE {}"]},
    "IT_FISCAL_CODE": {"tune": ["Il mio codice fiscale è {}.", "C.F.: {}"],
                       "held": ["Codice fiscale {} per la fattura", "CF {}"]},
    "NL_BSN": {"tune": ["Mijn BSN is {}.", "BSN: {}"],
               "held": ["burgerservicenummer {} voor de belasting", "Sofinummer: {}"]},
    "BR_CPF": {"tune": ["Meu CPF é {}.", "CPF: {}"], "held": ["CPF {} para a nota fiscal", "cadastro com CPF {}"]},
    "IN_AADHAAR": {"tune": ["My Aadhaar number is {}.", "Aadhaar: {}"],
                   "held": ["Aadhar {} for KYC", "UID {} linked to my account"]},
    "US_SSN": {"tune": ["My SSN is {}.", "Social Security Number: {}"],
               "held": ["SSN {} on the W-2", "social security no. {}"]},
}

SECRET_T = {
    "tune": ["export TOKEN={}", "my key is {} - please rotate it", "config: {}", "Use {} for the deploy step."],
    "held": ["the CI secret ({}) leaked in the log", "token = \"{}\"", "curl -H 'X-Key: {}' ...",
             "paste {} into the settings page"],
}


def _rand(rng: random.Random, n: int, alphabet: str = B62) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _secret_values(rng: random.Random) -> dict[str, Callable[[], str]]:
    def b64(n: int) -> str:
        return _rand(rng, n, B62 + "+/")

    return {
        "STRIPE_KEY": lambda: "whsec_" + _rand(rng, 32),
        "HUGGINGFACE_TOKEN": lambda: "hf_" + _rand(rng, 34, string.ascii_letters),
        "NPM_TOKEN": lambda: "npm_" + _rand(rng, 36),
        "GITLAB_TOKEN": lambda: "glpat-" + _rand(rng, 20, B62 + "_-"),
        "SENDGRID_KEY": lambda: f"SG.{_rand(rng, 22, B62 + '_-')}.{_rand(rng, 43, B62 + '_-')}",
        "TWILIO_KEY": lambda: "SK" + _rand(rng, 32, HEX),
        "AZURE_STORAGE_KEY": lambda: (
            "DefaultEndpointsProtocol=https;AccountName=acct"
            + _rand(rng, 6, string.ascii_lowercase)
            + ";AccountKey="
            + b64(86)
            + "==;EndpointSuffix=core.windows.net"
        ),
        "AZURE_SAS_TOKEN": lambda: (
            "https://acct.blob.core.windows.net/c/f.txt?sv=2022-11-02&ss=b&srt=o&sp=r&se=2025-01-01T00:00:00Z&sig="
            + _rand(rng, 43, B62).replace("a", "%2B", 1)
            + "%3D"
        ),
    }


def _card(fake: Faker, rng: random.Random) -> str:
    number = str(fake.credit_card_number())
    style = rng.randrange(3)
    if style == 1 and len(number) == 16:
        return " ".join(number[i : i + 4] for i in range(0, 16, 4))
    if style == 2 and len(number) == 16:
        return "-".join(number[i : i + 4] for i in range(0, 16, 4))
    return number


def _value_pairs(fake: dict[str, Faker], rng: random.Random) -> list[tuple[str, str, Callable[[], str]]]:
    pairs: list[tuple[str, str, Callable[[], str]]] = []
    for loc, f in fake.items():
        pairs.append(("PHONE", loc, f.phone_number))
        pairs.append(("EMAIL", loc, f.email))
        pairs.append(("CREDIT_CARD", loc, lambda f=f: _card(f, rng)))
        if loc not in ("ja_JP", "en_IN", "en_US"):
            pairs.append(("IBAN", loc, f.iban))
    pairs += [
        ("UK_NIN", "en_GB", fake["en_GB"].ssn),
        ("FR_INSEE", "fr_FR", fake["fr_FR"].ssn),
        ("ES_NIF", "es_ES", fake["es_ES"].nif),
        ("ES_NIE", "es_ES", fake["es_ES"].nie),
        ("IT_FISCAL_CODE", "it_IT", fake["it_IT"].ssn),
        ("NL_BSN", "nl_NL", fake["nl_NL"].ssn),
        ("BR_CPF", "pt_BR", fake["pt_BR"].cpf),
        ("BR_CPF", "pt_BR", fake["pt_BR"].ssn),
        ("IN_AADHAAR", "en_IN", fake["en_IN"].aadhaar_id),
        ("US_SSN", "en_US", fake["en_US"].ssn),
    ]
    for kind, make in _secret_values(rng).items():
        pairs.append((kind, "-", make))
    return pairs


def secret_part(value: str) -> str:
    """The part of a composite value that must go (the key of a connection string, the signature of a URL)."""
    for marker, end in (("AccountKey=", ";"), ("sig=", "&")):
        if marker in value:
            return value.split(marker, 1)[1].split(end, 1)[0]
    return value


def _template(kind: str, loc: str, split: str, rng: random.Random) -> str:
    if kind == "PHONE":
        return rng.choice(PHONE_T[LOCALE_LANG[loc]][split])
    if kind in ID_T:
        return rng.choice(ID_T[kind][split])
    if loc == "-":
        return rng.choice(SECRET_T[split])
    return rng.choice(GENERIC_T[split])


# ------------------------------------------------------------------------------------------------ benign

BENIGN_T = {
    "tune": ["The value in the report was {}.", "see {} in the table below", "Noted: {}", "It says {} on the box."],
    "held": ["Row 4 reads {} according to the sheet.", "We logged {} yesterday.", "(ref. {})",
             "According to the spec, {} applies here."],
}


def _benign_values(fake: dict[str, Faker], rng: random.Random) -> dict[str, Callable[[], str]]:
    de, fr, us, br = fake["de_DE"], fake["fr_FR"], fake["en_US"], fake["pt_BR"]

    def dims() -> str:
        a, b = rng.randint(100, 4000), rng.randint(100, 4000)
        return rng.choice([f"{a} x {b}", f"{a}x{b} px", f"{a} × {b} × {rng.randint(10, 99)} mm",  # noqa: RUF001
                           f"{rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(1000, 9999)}"])  # fmt: skip

    def row() -> str:
        return " ".join(str(rng.randint(1, 999)) for _ in range(rng.randint(3, 6)))

    def oid() -> str:
        return rng.choice(["1.3.6.1.4.1." + ".".join(str(rng.randint(1, 60000)) for _ in range(rng.randint(1, 4))),
                           f"2.5.4.{rng.randint(1, 99)}", f"1.2.840.{rng.randint(10000, 113549)}.1.1.{rng.randint(1, 14)}"])  # fmt: skip  # noqa: E501

    def version4() -> str:
        # four-part versions carry a build number: 10.0.19045.3693, 4.8.4161.0, 2.1.3.10442
        parts = [rng.randint(0, 30), rng.randint(0, 30), rng.randint(0, 30), rng.randint(300, 30000)]
        if rng.random() < 0.3:
            parts[2], parts[3] = rng.randint(300, 30000), rng.randint(0, 9)
        text = ".".join(map(str, parts))
        return text if rng.random() < 0.7 else rng.choice(["version ", "v", "build "]) + text

    def serial() -> str:
        return rng.choice([f"SN {rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
                           f"S/N: {rng.randint(100000, 999999)}{rng.randint(1000, 9999)}",
                           f"Seriennummer {rng.randint(10, 99)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"])  # fmt: skip  # noqa: E501

    def amount_de() -> str:
        n = rng.randint(1000, 99999999)
        return f"{n:,}".replace(",", ".") + f",{rng.randint(0, 99):02d}" + rng.choice([" €", " EUR", ""])

    def order() -> str:
        return rng.choice([f"Order #{rng.randint(100, 999)}-{rng.randint(1000000, 9999999)}",
                           f"Bestellnummer {rng.randint(10**9, 10**10 - 1)}",
                           f"commande n° {rng.randint(10**8, 10**9)}", f"pedido {rng.randint(100000, 999999)}-{rng.randint(10, 99)}",  # noqa: E501
                           f"invoice INV-{rng.randint(2019, 2025)}-{rng.randint(100000, 999999)}"])  # fmt: skip

    def timestamp() -> str:
        dt = us.date_time_between(start_date=_START, end_date=_END)  # fixed range: the output must not age
        return rng.choice([dt.isoformat(sep=" "), dt.strftime("%Y%m%d%H%M%S"), str(calendar.timegm(dt.timetuple())),
                           dt.strftime("%d.%m.%Y %H:%M"), dt.isoformat() + "Z"])  # fmt: skip

    def version() -> str:
        return rng.choice([f"v{rng.randint(0, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 30)}",
                           f"{rng.randint(0, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 9)}-rc.{rng.randint(1, 5)}"])  # fmt: skip  # noqa: E501

    def price() -> str:
        return rng.choice([us.pricetag(), de.pricetag(), fr.pricetag(), br.pricetag(),
                           f"${rng.randint(1, 9999):,}.{rng.randint(0, 99):02d}", f"¥{rng.randint(100, 999999):,}"])  # fmt: skip  # noqa: E501

    def slug() -> str:
        words = ["learn", "pipeline", "tutorial", "guide", "example", "notebook", "demo", "pandas", "model", "v2"]
        return "sk-" + "-".join(rng.sample(words, rng.randint(3, 6))) + f"-{rng.randint(2019, 2025)}"

    return {
        "dimensions": dims, "number_row": row, "oid": oid, "version_4part": version4, "serial": serial,
        "amount_de": amount_de, "order_number": order, "isbn": lambda: rng.choice([us.isbn13(), us.isbn10()]),
        "ean": lambda: rng.choice([us.ean13(), us.ean8()]), "doi": us.doi, "timestamp": timestamp,
        "version": version, "price": price, "slug": slug,
        "uuid": lambda: str(us.uuid4()), "hash": us.sha1, "postcode": lambda: de.postcode() + " " + de.city(),
        "date": lambda: de.date_between(_START, _END).strftime(rng.choice(["%d.%m.%Y", "%Y-%m-%d", "%d/%m/%Y"])),
    }  # fmt: skip


def build() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for split, seed in SEEDS.items():
        rng = random.Random(seed)
        Faker.seed(seed)
        fake = {loc: Faker(loc) for loc in LOCALE_LANG}
        for i, loc in enumerate(fake):
            fake[loc].seed_instance(seed + i)
        for kind, loc, make in _value_pairs(fake, rng):
            for _ in range(PER_PAIR[split]):
                value = str(make())
                text = _template(kind, loc, split, rng).format(value)
                row = {"text": text, "value": secret_part(value), "type": kind, "locale": loc, "label": 1}
                rows.append(row | {"split": split})
        for family, make in _benign_values(fake, rng).items():
            for _ in range(PER_BENIGN[split]):
                value = str(make())
                text = rng.choice(BENIGN_T[split]).format(value)
                rows.append({"text": text, "value": value, "family": family, "label": 0, "split": split})
    return rows


def main() -> None:
    rows = build()
    with OUT.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows to {OUT}")


if __name__ == "__main__":
    main()
