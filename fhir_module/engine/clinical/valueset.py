"""Membership of codes and names in FHIR R4 ValueSets, evaluated locally.

`ValueSetIndex` reads ValueSet resources and answers "is this code in that set?" without a
terminology server:

- `compose.include` / `compose.exclude` with `concept` lists, `filter`s and nested `valueSet`s
  (within one include, the system part and every listed value set must all accept the code);
  `expansion.contains` (nested) is honoured too;
- filters: `=` and `in` on property concept/code; `regex` (a full match on the code);
  `is-a`, `descendent-of` and `is-not-a`. Hierarchy filters need the code system's hierarchy.
  For ICD-10(-CM) and ATC the hierarchy is in the code itself (I63.011 sits under I63), so a
  prefix test is exact; for any other system there is no local hierarchy, and `is-a` takes
  only the named code itself while `descendent-of` takes nothing (an unknown descendant must not
  be claimed);
- codes are compared with whitespace removed; ICD-10(-CM) codes upper-case and dotted after the
  third character ("n186" is N18.6); NDCs in their 11-digit 5-4-2 form ("0456-2220-30" is
  "00456-2220-30" is "00456222030");
- names: the values of the recognition-name extension on a ValueSet (and on the value sets it
  includes) identify members by name when their code is not in the set. Names match whole words,
  case-insensitively, ignoring punctuation and apostrophes, with hyphens read as spaces or joined
  and "Saint" as "St" ("Saint John's-Wort" = "St. Johns wort"; "amphetamine" is not found in
  "dextroamphetamine").

`range_regex` writes the regex for a code range "A-B" in code-system order.
"""

from __future__ import annotations

import re
from functools import lru_cache
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable, Literal

from ._json import as_dict, as_list, as_str, codings, dicts
from .medication import MedicationConcepts

RECOGNITION_NAME_URL = "http://fhir-module.org/fhir/StructureDefinition/recognition-name"

ICD10_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10"})
# Systems whose hierarchy is spelled out by code prefixes.
PREFIX_HIERARCHY_SYSTEMS = ICD10_SYSTEMS | {"http://www.whocc.no/atc"}

# Characters of ICD-10-CM codes after normalisation, in code-point (= plain string) order.
CODE_ALPHABET = ".0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

Coding = tuple[str, str, str | None]


@dataclass(frozen=True)
class Match:
    """How a concept matched a value set: by its own code, an ingredient code, or a name."""

    how: Literal["code", "ingredient", "name"]
    coding: Coding | None
    name: str | None
    valueset: str


NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"
# The three 10-digit NDC layouts (labeler-product-package) and where each pads its zero for the
# 11-digit 5-4-2 form billing systems send: 4-4-2 -> 0xxxx, 5-3-2 -> xxxxx-0xxx, 5-4-1 -> ...-0x.
_NDC_PARTS = re.compile(r"(\d{4,5})-(\d{3,4})-(\d{1,2})")


def normalise_ndc(code: str) -> str:
    """An NDC as the 11 digits of its 5-4-2 form: "0456-2220-30" and "00456-2220-30" are both
    "00456222030". A 10-digit code without hyphens is ambiguous and stays as written."""
    parts = _NDC_PARTS.fullmatch(code)
    if parts is None:
        return code
    labeler, product, package = parts.groups()
    if len(labeler) + len(product) + len(package) not in (10, 11):
        return code
    return labeler.zfill(5) + product.zfill(4) + package.zfill(2)


def normalise_code(system: Any, code: Any) -> str | None:
    """A code as compared: whitespace removed; ICD-10 codes upper-case with the dot; NDCs in
    their 11-digit form."""
    if not isinstance(code, str):
        return None
    text = "".join(code.split())
    if not text:
        return None
    if isinstance(system, str) and system in ICD10_SYSTEMS:
        text = text.upper()
        if len(text) > 3 and "." not in text:
            text = f"{text[:3]}.{text[3:]}"
    elif system == NDC_SYSTEM:
        text = normalise_ndc(text)
    return text


_APOSTROPHES = re.compile(r"['\u2019\u2018\u02bc`\u00b4]")
_HYPHENS = re.compile(r"[-\u2010\u2011\u2012\u2013\u2014]")
_NON_WORD = re.compile(r"[^0-9a-z]+")
# Words written several ways for the same thing: "Saint John's Wort" is "St. John's wort".
_SAME_WORD = {"saint": "st", "sainte": "ste"}


def normalise_name(text: Any) -> str:
    """Lower-case words separated by single spaces: accents, apostrophes and punctuation removed,
    hyphens as spaces, "saint" written "st"."""
    if not isinstance(text, str):
        return ""
    return _normalised(text)


@lru_cache(maxsize=8192)
def _normalised(text: str) -> str:
    # Cached: every request matches the same few drug names against the value sets' names.
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    words = _NON_WORD.sub(" ", _APOSTROPHES.sub("", plain)).split()
    return " ".join(_SAME_WORD.get(word, word) for word in words)


def _forms(text: Any) -> tuple[str, ...]:
    """The normalised text with its hyphens read as spaces, and joined ("St John's-wort" and
    "levo-milnacipran" are also "st johnswort" and "levomilnacipran")."""
    if not isinstance(text, str):
        return ()
    return _text_forms(text)


@lru_cache(maxsize=8192)
def _text_forms(text: str) -> tuple[str, ...]:
    # Cached: a drug text new to the knowledge base is read against every name of a value set
    # (hundreds), each name's forms worked out again for every text (a third of the self-test's
    # first matches).
    spaced, joined = _normalised(text), _normalised(_HYPHENS.sub("", text))
    return (spaced,) if joined == spaced else (spaced, joined)


def _occurs(wanted: str, text: str) -> bool:
    padded = f" {text} "
    start = padded.find(f" {wanted} ")
    while start != -1:
        before, after = padded[:start + 1], padded[start + len(wanted) + 1:]
        if not after.startswith(" free ") and not before.endswith(" non "):
            return True
        start = padded.find(f" {wanted} ", start + 1)
    return False


def name_matches(name: Any, text: Any) -> bool:
    """True when *name* occurs in *text* as whole words (see module docstring), and not as what
    the product lacks: "aspirin-free", "non-aspirin" name a drug without it."""
    wanted = [form for form in _forms(name) if form]
    return bool(wanted) and any(_occurs(w, t) for w in wanted for t in _forms(text))


@dataclass(frozen=True)
class _Rule:
    """One compose.include or compose.exclude."""

    system: str | None
    concepts: frozenset[str] | None
    filters: tuple[tuple[str, str, str], ...]
    valuesets: tuple[str, ...]


@dataclass(frozen=True)
class _Entry:
    includes: tuple[_Rule, ...]
    excludes: tuple[_Rule, ...]
    expansion: frozenset[tuple[str, str]]
    names: tuple[str, ...]


def _canonical(url: Any) -> str | None:
    """A canonical URL without its |version suffix."""
    text = as_str(url)
    return text.split("|")[0] if text else None


def _rule(raw: dict) -> _Rule:
    system = as_str(raw.get("system"))
    concepts = None
    if "concept" in raw:
        concepts = frozenset(
            c for c in (normalise_code(system, item.get("code")) for item in dicts(raw.get("concept"))) if c
        )
    filters = []
    for item in dicts(raw.get("filter")):
        prop, op, value = as_str(item.get("property")), as_str(item.get("op")), as_str(item.get("value"))
        if prop and op and value is not None:
            filters.append((prop, op, value))
        else:
            filters.append(("", "invalid", ""))  # an unreadable filter must not widen the rule
    valuesets = tuple(u for u in (_canonical(v) for v in as_list(raw.get("valueSet"))) if u)
    return _Rule(system, concepts, tuple(filters), valuesets)


def _expansion(contains: Any, out: set[tuple[str, str]], depth: int = 0) -> None:
    if depth > 50:
        return
    for item in dicts(contains):
        system = as_str(item.get("system")) or ""
        code = normalise_code(system, item.get("code"))
        if code:
            out.add((system, code))
        _expansion(item.get("contains"), out, depth + 1)


def _names(valueset: dict) -> tuple[str, ...]:
    found = []
    for ext in dicts(valueset.get("extension")):
        if ext.get("url") == RECOGNITION_NAME_URL:
            name = as_str(ext.get("valueString"))
            if name:
                found.append(name)
    return tuple(found)


class ValueSetIndex:
    """Local evaluation of ValueSet membership by code and by recognition name."""

    def __init__(self, valuesets: Iterable[dict]) -> None:
        self._entries: dict[str, _Entry] = {}
        self._cache: dict[tuple[str, str, str], bool] = {}
        self._regex: dict[str, re.Pattern | None] = {}
        items = valuesets if isinstance(valuesets, (list, tuple)) else list(valuesets or [])
        for vs in items:
            if not isinstance(vs, dict) or vs.get("resourceType", "ValueSet") != "ValueSet":
                continue
            url = _canonical(vs.get("url"))
            if not url:
                continue
            compose = as_dict(vs.get("compose"))
            expansion: set[tuple[str, str]] = set()
            _expansion(as_dict(vs.get("expansion")).get("contains"), expansion)
            self._entries[url] = _Entry(
                includes=tuple(_rule(r) for r in dicts(compose.get("include"))),
                excludes=tuple(_rule(r) for r in dicts(compose.get("exclude"))),
                expansion=frozenset(expansion),
                names=_names(vs),
            )

    @property
    def urls(self) -> tuple[str, ...]:
        """Canonical URLs of the indexed value sets."""
        return tuple(self._entries)

    # -- membership by code -------------------------------------------------------------------

    def contains(self, url: Any, system: Any, code: Any) -> bool:
        """True when (system, code) is a member of the value set *url* (False if unknown)."""
        key_url, key_system = _canonical(url), as_str(system) or ""
        key_code = normalise_code(key_system, code)
        if key_url is None or key_code is None:
            return False
        key = (key_url, key_system, key_code)
        if key not in self._cache:
            self._cache[key] = self._member(key_url, key_system, key_code, frozenset())
        return self._cache[key]

    def _member(self, url: str, system: str, code: str, visiting: frozenset[str]) -> bool:
        entry = self._entries.get(url)
        if entry is None or url in visiting:
            return False  # unknown set, or a cycle of includes
        visiting = visiting | {url}
        if (system, code) in entry.expansion:
            return True
        if not any(self._rule_accepts(r, system, code, visiting) for r in entry.includes):
            return False
        return not any(self._rule_accepts(r, system, code, visiting) for r in entry.excludes)

    def _rule_accepts(self, rule: _Rule, system: str, code: str, visiting: frozenset[str]) -> bool:
        if rule.system is None and not rule.valuesets:
            return False
        if rule.system is not None:
            if rule.system != system:
                return False
            if rule.concepts is not None and code not in rule.concepts:
                return False
            if not all(self._filter_accepts(system, code, f) for f in rule.filters):
                return False
        return all(self._member(u, system, code, visiting) for u in rule.valuesets)

    def _filter_accepts(self, system: str, code: str, flt: tuple[str, str, str]) -> bool:
        prop, op, raw_value = flt
        if op == "regex":
            pattern = self._compiled(raw_value)
            return pattern is not None and pattern.fullmatch(code) is not None
        if prop not in ("concept", "code"):
            return False  # other properties need the code system's data, which is not here
        value = normalise_code(system, raw_value) or ""
        hierarchical = system in PREFIX_HIERARCHY_SYSTEMS
        if op == "=":
            return code == value
        if op == "in":
            return code in {normalise_code(system, v) for v in raw_value.split(",")}
        if op == "not-in":
            return code not in {normalise_code(system, v) for v in raw_value.split(",")}
        if op == "is-a":
            return code == value or (hierarchical and code.startswith(value))
        if op == "descendent-of":
            return hierarchical and code != value and code.startswith(value)
        if op == "is-not-a":
            return hierarchical and not (code == value or code.startswith(value))
        return False

    def _compiled(self, pattern: str) -> re.Pattern | None:
        if pattern not in self._regex:
            try:
                self._regex[pattern] = re.compile(pattern)
            except (re.error, RecursionError, OverflowError):
                self._regex[pattern] = None
        return self._regex[pattern]

    # -- names --------------------------------------------------------------------------------

    def names(self, url: Any) -> tuple[str, ...]:
        """Recognition names of the value set and of the value sets it includes."""
        found: list[str] = []
        self._collect_names(_canonical(url), found, set())
        return tuple(dict.fromkeys(found))

    def _collect_names(self, url: str | None, found: list[str], seen: set[str]) -> None:
        entry = self._entries.get(url) if url else None
        if entry is None or url in seen:
            return
        seen.add(url)
        found.extend(entry.names)
        for rule in entry.includes:
            for nested in rule.valuesets:
                self._collect_names(nested, found, seen)

    # -- matching concepts --------------------------------------------------------------------

    def match(self, url: Any, concepts: Any) -> Match | None:
        """How *concepts* belong to the value set *url*: by code, by ingredient code, or by
        name, in that order; None when they do not.

        *concepts* may be a MedicationConcepts, a CodeableConcept, a Coding, a (system, code[,
        display]) tuple, a text, or a list of these.
        """
        key = _canonical(url)
        if key is None:
            return None
        codes: list[Coding] = []
        ingredients: list[Coding] = []
        texts: list[str] = []
        _flatten(concepts, codes, ingredients, texts, 0)
        for how, found in (("code", codes), ("ingredient", ingredients)):
            for coding in found:
                if self.contains(key, coding[0], coding[1]):
                    return Match(how, coding, None, key)
        names = self.names(key)
        for text in texts:
            for name in names:
                if name_matches(name, text):
                    return Match("name", None, name, key)
        return None


def _flatten(item: Any, codes: list, ingredients: list, texts: list, depth: int) -> None:
    """Sort the pieces of a match() argument into codes, ingredient codes and texts."""
    if depth > 20:
        return
    if isinstance(item, MedicationConcepts):
        codes.extend(item.codings)
        ingredients.extend(item.ingredient_codings)
        texts.extend(item.names)
    elif isinstance(item, str):
        texts.append(item)
    elif isinstance(item, dict):
        if "coding" in item or "text" in item:
            found = codings(item)
            codes.extend(found)
            texts.extend(d for _, _, d in found if d)
            if as_str(item.get("text")):
                texts.append(as_str(item.get("text")))
        elif "code" in item:
            found = codings({"coding": [item]})
            codes.extend(found)
            texts.extend(d for _, _, d in found if d)
    elif isinstance(item, tuple) and len(item) in (2, 3) and all(isinstance(p, (str, type(None))) for p in item):
        system, code = item[0], item[1]
        if isinstance(code, str):
            display = item[2] if len(item) == 3 else None
            codes.append((system or "", "".join(code.split()), display))
            if display:
                texts.append(display)
    elif isinstance(item, (list, tuple)):
        for part in item:
            _flatten(part, codes, ingredients, texts, depth + 1)


# -- code ranges as regular expressions ---------------------------------------------------------

_REGEX_SPECIAL = set(".^$*+?()[]{}|\\-")


def _escape(ch: str) -> str:
    return "\\" + ch if ch in _REGEX_SPECIAL else ch


def _char_class(chars: list[str]) -> str:
    """A character class for exactly *chars* (ranges only over code-point-contiguous runs)."""
    chars = sorted(set(chars))
    if len(chars) == 1:
        return _escape(chars[0])
    runs: list[list[str]] = []
    for ch in chars:
        if runs and ord(ch) == ord(runs[-1][-1]) + 1:
            runs[-1].append(ch)
        else:
            runs.append([ch])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{_escape(run[0])}-{_escape(run[-1])}")
        else:
            parts.extend(_escape(ch) for ch in run)
    return "[" + "".join(parts) + "]"


def range_regex(low: str, high: str, alphabet: str = CODE_ALPHABET) -> str:
    """A regex (plain groups, no lookaround: valid in Python, JavaScript and XML Schema) that
    fully matches exactly the strings c over *alphabet* with low <= c <= high in plain string
    order, which is ICD-10-CM order on dotted upper-case codes. E.g. F32.0-F32.5 takes F32.0,
    F32.1, F32.41 and F32.5 but not F32.A, F32.8 or F32.9.

    Raises ValueError when low > high or a bound uses a character outside *alphabet* (the
    bounds come from knowledge data, where such a range is an authoring error).
    """
    symbols = sorted(set(alphabet))
    if not symbols:
        raise ValueError("range_regex needs a non-empty alphabet")
    for bound in (low, high):
        if not isinstance(bound, str) or any(ch not in symbols for ch in bound):
            raise ValueError(f"range bound {bound!r} has characters outside the code alphabet")
    if low > high:
        raise ValueError(f"empty code range: {low!r} > {high!r}")
    any_tail = _char_class(symbols) + "*"

    def greater(ch: str) -> list[str]:
        return [s for s in symbols if s > ch]

    def less(ch: str) -> list[str]:
        return [s for s in symbols if s < ch]

    def at_least(x: str) -> str:
        """Strings >= x: x followed by anything, or a larger character at the first difference."""
        if not x:
            return any_tail
        alternatives = [_escape(x[0]) + at_least(x[1:])]
        if greater(x[0]):
            alternatives.append(_char_class(greater(x[0])) + any_tail)
        return alternatives[0] if len(alternatives) == 1 else "(" + "|".join(alternatives) + ")"

    def at_most(x: str) -> str:
        """Strings <= x: any prefix of x (the empty string too), or a smaller character at the
        first difference."""
        if not x:
            return ""
        alternatives = [_escape(x[0]) + at_most(x[1:])]
        if less(x[0]):
            alternatives.append(_char_class(less(x[0])) + any_tail)
        return "(" + "|".join(alternatives) + ")?"

    common = 0
    while common < min(len(low), len(high)) and low[common] == high[common]:
        common += 1
    prefix = "".join(_escape(ch) for ch in low[:common])
    lo, hi = low[common:], high[common:]
    if not lo:  # low is a prefix of high
        return prefix + at_most(hi)
    # Here lo[0] < hi[0]: the first differing character splits the range in three.
    alternatives = [_escape(lo[0]) + at_least(lo[1:])]
    between = [s for s in symbols if lo[0] < s < hi[0]]
    if between:
        alternatives.append(_char_class(between) + any_tail)
    alternatives.append(_escape(hi[0]) + at_most(hi[1:]))
    return prefix + "(" + "|".join(alternatives) + ")"
