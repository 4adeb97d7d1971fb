"""Rows of ``detector_corpus.jsonl`` for the identifiers, secrets and look-alikes added with the multi-locale
detectors (issue 18): Faker values in the ``tune`` templates of ``multilocale_build.py``, with a seed of their own."""

from __future__ import annotations

import random
from collections.abc import Callable

from faker import Faker
from multilocale_build import LOCALE_LANG, _benign_values, _template, _value_pairs

SEED = 7
NEW_TYPES = ("UK_NIN", "FR_INSEE", "ES_NIF", "ES_NIE", "IT_FISCAL_CODE", "NL_BSN", "BR_CPF", "IN_AADHAAR",
             "STRIPE_KEY", "HUGGINGFACE_TOKEN", "NPM_TOKEN", "GITLAB_TOKEN", "SENDGRID_KEY", "TWILIO_KEY",
             "AZURE_STORAGE_KEY", "AZURE_SAS_TOKEN", "PHONE")  # fmt: skip


def add_extra_rows(pos: Callable[..., None], benign: Callable[[list[str]], None]) -> None:
    rng = random.Random(SEED)
    Faker.seed(SEED)
    fake = {loc: Faker(loc) for loc in LOCALE_LANG}
    for i, loc in enumerate(fake):
        fake[loc].seed_instance(SEED + i)
    per_type: dict[str, list[str]] = {}
    for kind, loc, make in _value_pairs(fake, rng):
        if kind not in NEW_TYPES:
            continue
        n = 3 if kind == "PHONE" else 16
        per_type.setdefault(kind, []).extend(_template(kind, loc, "tune", rng).format(make()) for _ in range(n))
    for kind, texts in per_type.items():
        pos(kind, texts)
    looks: list[str] = []
    for _family, make in _benign_values(fake, rng).items():
        looks.extend(f"The figure on the label: {make()}" for _ in range(3))
    benign(looks)
