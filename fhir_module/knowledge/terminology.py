"""The verified codes the module may use (data/terminology/), read as tables.

`codes.csv` cells may hold several codes separated by spaces, a range `A-B` (every code between
them in the code system's order) or `X.x` (X and every code under it). They are kept as written
here; `CodeToken` says which form each one is, and the ValueSet builder represents each faithfully.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


@dataclass(frozen=True)
class CodeToken:
    """One code, range or hierarchy written in a terminology cell."""

    system: str
    text: str
    display: str

    @property
    def kind(self) -> str:
        if self.text.endswith(".x"):
            return "is-a"
        # ICD-10-CM codes never contain '-', LOINC codes do (2164-2): only a range has a '-'
        # with a letter on both sides.
        low, sep, high = self.text.partition("-")
        if sep and low[:1].isalpha() and high[:1].isalpha():
            return "range"
        return "code"

    @property
    def bounds(self) -> tuple[str, str]:
        low, _, high = self.text.partition("-")
        return low, high

    @property
    def parent(self) -> str:
        return self.text[: -len(".x")]


@dataclass(frozen=True)
class RxNormRow:
    drug_class: str
    ingredient: str
    rxcui: str
    tty: str
    display: str


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("fhir_module.data.terminology").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@cache
def rxnorm_rows() -> tuple[RxNormRow, ...]:
    return tuple(
        RxNormRow(r["class"], r["ingredient"], r["rxcui"], r["tty"], r["display"]) for r in _rows("rxnorm.csv")
    )


@cache
def code_groups() -> dict[str, tuple[CodeToken, ...]]:
    """Group name → every code token of codes.csv in that group, in file order."""
    groups: dict[str, list[CodeToken]] = {}
    for row in _rows("codes.csv"):
        for token in row["code"].split():
            groups.setdefault(row["group"], []).append(CodeToken(row["system"], token, row["display"]))
    return {name: tuple(tokens) for name, tokens in groups.items()}


def rxnorm_class(name: str) -> tuple[RxNormRow, ...]:
    return tuple(row for row in rxnorm_rows() if row.drug_class == name)


def known_rxcuis() -> frozenset[str]:
    return frozenset(row.rxcui for row in rxnorm_rows())
