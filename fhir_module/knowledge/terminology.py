"""The verified codes a module may use, read as tables: the shared terminology plus the module's overlay.

`fhir_module/data/terminology/` holds the codes every module may use (`codes.csv`, `rxnorm.csv`, and
the README that names the few codes known only from its notes). A module folder may add its own rows
in a `terminology/` folder of the same shapes, each row with a `source` saying where the code and
its display were seen; an overlay row that gives a shared code another display is refused.

`codes.csv` cells may hold several codes separated by spaces, a range `A-B` (every code between
them in the code system's order) or `X.x` (X and every code under it). They are kept as written
here; `CodeToken` says which form each one is, and the ValueSet builder represents each faithfully.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
RXNORM_FILE = "rxnorm.csv"
CODES_FILE = "codes.csv"
RXNORM_COLUMNS = ("class", "ingredient", "rxcui", "tty", "display")
CODES_COLUMNS = ("group", "system", "code", "display", "verified")


class TerminologyError(ValueError):
    """A terminology table that cannot be used; names the file and line."""


@dataclass(frozen=True)
class CodeToken:
    """One code, range or hierarchy written in a terminology cell."""

    system: str
    text: str
    display: str
    # A cell of several codes shares one display; it is verified for the code only when it is alone.
    alone: bool = True

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

    @cached_property
    def ingredients(self) -> tuple[str, ...]:
        """The ingredient names of the row (`a|b` for a combination product)."""
        return tuple(part for part in self.ingredient.split("|") if part)


@dataclass(frozen=True)
class Terminology:
    """The codes one module may use: rows of rxnorm.csv and codes.csv, and the notes that document others."""

    rxnorm_rows: tuple[RxNormRow, ...]
    code_rows: tuple[tuple[str, CodeToken], ...]  # (group, token), in file order
    notes: str = ""
    sources: tuple[str, ...] = field(default=(), compare=False)  # the files read, for messages

    def rxnorm_class(self, name: str) -> tuple[RxNormRow, ...]:
        return tuple(row for row in self.rxnorm_rows if row.drug_class == name)

    def rxnorm_ingredient(self, name: str) -> tuple[RxNormRow, ...]:
        """Every row (of any class) of a product that contains the ingredient, each code once."""
        rows = self._rows_by_ingredient.get(name.lower(), ())
        return tuple({row.rxcui: row for row in rows}.values())

    @cached_property
    def _rows_by_ingredient(self) -> dict[str, list[RxNormRow]]:
        # Each module's value sets ask for several ingredients: the table is read once, not per name.
        by_ingredient: dict[str, list[RxNormRow]] = {}
        for row in self.rxnorm_rows:
            for part in dict.fromkeys(part.lower() for part in row.ingredients):
                by_ingredient.setdefault(part, []).append(row)
        return by_ingredient

    def rxnorm_row(self, rxcui: str) -> RxNormRow | None:
        return next((row for row in self.rxnorm_rows if row.rxcui == rxcui), None)

    def known_rxcuis(self) -> frozenset[str]:
        return frozenset(row.rxcui for row in self.rxnorm_rows)

    def code_groups(self) -> Mapping[str, tuple[CodeToken, ...]]:
        """Group name → every code token of codes.csv in that group, in file order (read-only:
        worked out once, every value set and artifact built asks for it)."""
        return self._code_groups

    @cached_property
    def _code_groups(self) -> Mapping[str, tuple[CodeToken, ...]]:
        groups: dict[str, list[CodeToken]] = {}
        for group, token in self.code_rows:
            groups.setdefault(group, []).append(token)
        return MappingProxyType({name: tuple(tokens) for name, tokens in groups.items()})

    def documented(self, code: str) -> bool:
        """A code outside the tables counts only where the terminology notes name it."""
        import re

        return code in self.known_rxcuis() or re.search(rf"\b{re.escape(code)}\b", self.notes) is not None

    def with_overlay(self, folder: str | Path) -> "Terminology":
        """This terminology plus a module's `terminology/` folder (absent: unchanged)."""
        folder = Path(folder)
        if not folder.is_dir():
            return self
        rxnorm = list(self.rxnorm_rows)
        codes = list(self.code_rows)
        sources = list(self.sources)
        path = folder / RXNORM_FILE
        if path.is_file():
            known = {row.rxcui: row for row in rxnorm}
            for line, row in _read(path.read_text("utf-8"), str(path), RXNORM_COLUMNS, overlay=True):
                extra = _rxnorm_row(row)
                shared = known.get(extra.rxcui)
                if shared is not None and shared.display != extra.display:
                    raise TerminologyError(f"{path}:{line}: RxNorm {extra.rxcui} is {shared.display!r} in the shared "
                                           f"terminology, not {extra.display!r}")
                rxnorm.append(extra)
            sources.append(str(path))
        path = folder / CODES_FILE
        if path.is_file():
            shared_displays = {(t.system, t.text): t.display for _, t in codes if t.alone}
            for line, row in _read(path.read_text("utf-8"), str(path), CODES_COLUMNS, overlay=True):
                for group, token in _code_row(row):
                    known_display = shared_displays.get((token.system, token.text))
                    if token.alone and known_display is not None and known_display != token.display:
                        raise TerminologyError(f"{path}:{line}: {token.system}|{token.text} is {known_display!r} in "
                                               f"the shared terminology, not {token.display!r}")
                    codes.append((group, token))
            sources.append(str(path))
        notes = self.notes
        readme = folder / "README.md"
        if readme.is_file():
            notes += "\n" + readme.read_text("utf-8")
        return Terminology(tuple(rxnorm), tuple(codes), notes, tuple(sources))


def _read(text: str, source: str, columns: tuple[str, ...], *, overlay: bool) -> list[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(text.splitlines())
    wanted = (*columns, "source") if overlay else columns
    missing = [c for c in wanted if c not in (reader.fieldnames or [])]
    if missing:
        raise TerminologyError(f"{source}:1: missing column(s) {', '.join(missing)} (expected {', '.join(wanted)})")
    rows = []
    for row in reader:
        line = reader.line_num
        empty = [c for c in wanted if not (row.get(c) or "").strip()]
        if empty:
            why = " (an overlay row says where its code was seen)" if "source" in empty else ""
            raise TerminologyError(f"{source}:{line}: empty {', '.join(empty)}{why}")
        rows.append((line, {key: (value or "").strip() for key, value in row.items() if key}))
    return rows


def _rxnorm_row(row: dict[str, str]) -> RxNormRow:
    return RxNormRow(row["class"], row["ingredient"], row["rxcui"], row["tty"], row["display"])


def _code_row(row: dict[str, str]) -> list[tuple[str, CodeToken]]:
    tokens = row["code"].split()
    return [(row["group"], CodeToken(row["system"], token, row["display"], len(tokens) == 1)) for token in tokens]


def _package_text(name: str) -> str:
    return resources.files("fhir_module.data.terminology").joinpath(name).read_text(encoding="utf-8")


@cache
def shared() -> Terminology:
    """The terminology every module may use (fhir_module/data/terminology/)."""
    rxnorm = tuple(_rxnorm_row(row) for _, row in _read(_package_text(RXNORM_FILE), RXNORM_FILE, RXNORM_COLUMNS,
                                                          overlay=False))
    codes = tuple(pair for _, row in _read(_package_text(CODES_FILE), CODES_FILE, CODES_COLUMNS, overlay=False)
                  for pair in _code_row(row))
    return Terminology(rxnorm, codes, _package_text("README.md"), (RXNORM_FILE, CODES_FILE))
