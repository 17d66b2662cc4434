"""The typed model of a parsed monograph: sections, blocks and addressable sentences."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterator

from .text import collapse


class MonographError(Exception):
    """A monograph that cannot be read; names the source, line and section where it went wrong."""

    def __init__(self, reason: str, *, source: str = "<monograph>", line: int | None = None,
                 section: str | None = None) -> None:
        self.reason = reason
        self.source = source
        self.line = line
        self.section = section
        where = source if line is None else f"{source}, line {line}"
        if section is not None:
            where += f" (section '{section}')"
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class Sentence:
    """One sentence, addressable as "<section id>.<n>" (n counts from 1 within the section)."""

    id: str
    section_id: str
    text: str
    line: int
    label: str | None = None


@dataclass(frozen=True)
class Paragraph:
    """A paragraph, optionally led by a bold label such as `**Children:**`."""

    label: str | None
    text: str
    sentences: tuple[Sentence, ...]
    line: int


@dataclass(frozen=True)
class Bullet:
    """One bullet item; `terms` holds the comma-separated items of a list line (empty for prose)."""

    category: str | None
    text: str
    terms: tuple[str, ...]
    sentences: tuple[Sentence, ...]
    line: int


@dataclass(frozen=True)
class BulletList:
    """A bullet list with the bold heading above it and the frequency band in that heading."""

    heading: str | None
    band: str | None
    items: tuple[Bullet, ...]
    line: int
    band_low: float | None = None
    band_high: float | None = None


@dataclass(frozen=True)
class FAQ:
    """A question with its answer; the question is the first of its sentences."""

    question: str
    answer: str
    line: int
    sentences: tuple[Sentence, ...]


Block = Paragraph | BulletList | FAQ


@dataclass(frozen=True)
class Section:
    """A `###` section; `id` is its anchor slug."""

    id: str
    title: str
    level: int
    line: int
    blocks: tuple[Block, ...]
    sentences: tuple[Sentence, ...]


_ELLIPSIS = re.compile(r"\.\.\.|…")


def normalise_quote(text: str) -> str:
    """A quote as sentences are stored: emphasis markers removed, whitespace collapsed."""
    return collapse(text.replace("*", ""))


@dataclass(frozen=True)
class Monograph:
    """A whole monograph: title, front matter, sections, and the raw text it came from."""

    title: str
    front_matter: dict
    sections: tuple[Section, ...]
    source: str
    text: str = field(repr=False)

    @cached_property
    def _sections_by_id(self) -> dict[str, Section]:
        return {s.id: s for s in self.sections}

    @cached_property
    def _sentences_by_id(self) -> dict[str, Sentence]:
        return {s.id: s for s in self.sentences()}

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the raw UTF-8 text, for provenance."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def section(self, id: str) -> Section:
        """The section with this anchor id; KeyError naming the known ids if absent."""
        try:
            return self._sections_by_id[id]
        except KeyError:
            raise KeyError(f"no section '{id}' in {self.source}; sections: "
                           f"{', '.join(self._sections_by_id)}") from None

    def sentences(self) -> Iterator[Sentence]:
        """Every sentence, in document order."""
        for section in self.sections:
            yield from section.sentences

    def sentence(self, id: str) -> Sentence:
        """The sentence with this id (e.g. "dosage.3"); KeyError if absent."""
        try:
            return self._sentences_by_id[id]
        except KeyError:
            raise KeyError(f"no sentence '{id}' in {self.source}") from None

    @cached_property
    def _found(self) -> dict[str, tuple[Sentence, ...]]:
        return {}

    def find_all(self, quote: str) -> list[Sentence]:
        """Every sentence containing *quote* (see `find`)."""
        # Kept per quote: the loader and the knowledge check look the same quotes up again and
        # again (374 lookups of 101 quotes at every start), each a scan of every sentence.
        found = self._found.get(quote)
        if found is None:
            parts = [p.strip() for p in _ELLIPSIS.split(normalise_quote(quote))]
            parts = [p for p in parts if p]
            if not parts:
                raise ValueError("empty quote")
            found = self._found[quote] = tuple(s for s in self.sentences() if _contains_in_order(s.text, parts))
        return list(found)

    def find(self, quote: str) -> Sentence | None:
        """The first sentence that contains *quote*, or None.

        Whitespace is collapsed and `*` markers removed on both sides; "..." or "…" in the quote
        stands for any text between its parts, which must appear in order within one sentence.
        A quote that is exactly a block label or category (e.g. "Pregnancy and Lactation") and
        is in no sentence gives the first sentence under that label.
        """
        found = self.find_all(quote)
        if found:
            return found[0]
        label = normalise_quote(quote)
        return next((s for s in self.sentences() if s.label == label), None)


def _contains_in_order(text: str, parts: list[str]) -> bool:
    position = 0
    for part in parts:
        index = text.find(part, position)
        if index < 0:
            return False
        position = index + len(part)
    return True
