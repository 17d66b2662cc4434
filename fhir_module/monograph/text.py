"""Text helpers for monographs: emphasis removal, sentence splitting, slugs, numbers.

These functions know Markdown and English punctuation, never a drug.
"""

from __future__ import annotations

import re

# Tokens that end with a full stop without ending a sentence (compared lower-case, without the stop).
_ABBREVIATIONS = frozenset({"e.g", "i.e", "dr", "vs", "mr", "mrs", "ms", "approx", "cf", "fig", "prof"})

# A run of sentence punctuation (plus closing quotes/brackets/emphasis) that is followed by
# whitespace and something that can start a sentence.
_BOUNDARY = re.compile(r"[.!?]+[\"')\]*]*(?=\s+[\"'(\[*]*[A-Z0-9])")
_LAST_TOKEN = re.compile(r"(\S+)$")

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"\*(\S(?:.*?\S)?)\*")
_SPACES = re.compile(r"\s+")


def strip_emphasis(text: str) -> str:
    """Remove Markdown emphasis markers (`**x**`, `*x*`, stray `*`) and collapse whitespace."""
    text = _BOLD.sub(r"\1", text)
    text = _ITALIC.sub(r"\1", text)
    return collapse(text.replace("*", ""))


def collapse(text: str) -> str:
    """Collapse runs of whitespace to one space and trim."""
    return _SPACES.sub(" ", text).strip()


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Split *text* into sentences; return (start, end) spans into *text*, blanks skipped.

    A full stop after an abbreviation ("e.g.", "Dr.", "vs.") or a single capital initial does
    not end a sentence; decimals and ranges never match because no space follows their stop.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        punct = match.group(0).rstrip("\"')]*")
        if punct == ".":
            token = _LAST_TOKEN.search(text, 0, match.start())
            word = token.group(1).lstrip("(\"'[*").lower() if token else ""
            if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
                continue
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(text)))
    result = []
    for s, e in spans:
        # Trim the whitespace at both ends so spans point at the sentence itself.
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            result.append((s, e))
    return result


def slugify(title: str) -> str:
    """The anchor of a heading: lower case, each run of non-alphanumerics becomes '-'."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def split_terms(text: str) -> tuple[str, ...]:
    """Split a list line at commas outside parentheses, keeping glosses with their term."""
    terms: list[str] = []
    depth = 0
    current = ""
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    terms.append(current)
    return tuple(t for t in (collapse(t) for t in terms) if t)


_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}
# A number not glued to a letter on its left nor followed by letters then digits, so identifiers
# such as "CYP3A4", "3A4" or "P450" are not quantities while "120mg" is; thousands separators only
# in groups of exactly three digits.
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9.,])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?![\d.,]*[A-Za-z]+\d)")
_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)


_DURATION = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?|" + "|".join(_NUMBER_WORDS) + r")[\s-]+(days?|weeks?)\b", re.IGNORECASE
)
_DAYS_PER = {"day": 1, "week": 7}


def durations_in_days(text: str) -> list[float]:
    """Every duration in days or weeks in *text*, in days ("for one week" → 7, "two days" → 2)."""
    found = []
    for match in _DURATION.finditer(text):
        amount = match.group(1).lower()
        value = float(_NUMBER_WORDS[amount]) if amount in _NUMBER_WORDS else float(amount)
        found.append(value * _DAYS_PER[match.group(2).lower().rstrip("s")])
    return found


def numbers_in(text: str, words: bool = True) -> list[float]:
    """Every number in *text*, in order of appearance, as floats.

    Ranges give both ends ("30–59" → 30, 59; "1-10%" → 1, 10: a dash is never a minus sign),
    comparison signs are ignored ("≥60" → 60). With *words*, the number words zero to twelve
    count too ("two days" → 2), so a rule saying "2 days" matches a sentence saying "two days".
    """
    found: list[tuple[int, float]] = [
        (m.start(), float(m.group(1).replace(",", ""))) for m in _NUMBER.finditer(text)
    ]
    if words:
        found += [(m.start(), float(_NUMBER_WORDS[m.group(1).lower()])) for m in _WORD.finditer(text)]
    return [value for _, value in sorted(found)]
