"""Provenance is checked, not claimed: quotes must be monograph sentences, numbers must be in them.

A quoted sentence that is no longer in the monograph (or sits in another section), a monograph-sourced
number that its sentence does not state (in digits, in words, or as a duration: "one week" is 7 days),
or a numeric literal hidden in an expression stops the build, naming the file and line.
"""

from __future__ import annotations

import re
from typing import Any

from fhir_module.monograph import Monograph, durations_in_days, numbers_in

from .model import Quote
from .source import Located

# Keys of drug facts that are not monograph numbers (how often a day is said in words: "once daily").
_UNCHECKED_NUMBERS = frozenset({"per_day", "count"})


class Provenance:
    """Checks against the monograph, with messages that say where the problem is."""

    _NUMBER_LITERAL = re.compile(r"(?<![\w%.])\d+(?:\.\d+)?(?![\w.])")
    _BARE_BOOLEAN_FILTER = re.compile(r"\.(where|all|exists)\(\s*[A-Za-z_]\w*\s*\)")

    def __init__(self, monograph: Monograph, located: Located) -> None:
        self.monograph = monograph
        self.located = located

    def quote(self, spec: dict[str, str], where: str) -> Quote:
        sentence = self.monograph.find(spec["text"])
        if sentence is None:
            raise self.located.error(spec, where, f"the quoted sentence is not in the monograph: {spec['text']!r}")
        if sentence.section_id != spec["section"]:
            raise self.located.error(spec, where, f"the quote is in section {sentence.section_id!r}, not {spec['section']!r}")
        title = self.monograph.section(sentence.section_id).title
        return Quote(spec["section"], spec["text"], sentence, title)

    def number_in_quote(self, value: float, quote: Quote, node: Any, where: str, key: Any = None) -> None:
        text = quote.sentence.text
        stated = [*numbers_in(text), *durations_in_days(text)]
        if not any(abs(found - value) < 1e-9 for found in stated):
            raise self.located.error(node, where, f"the number {value:g} is not in its quoted sentence: {text!r}", key)

    def no_bare_boolean_filters(self, expression: str, node: Any, where: str, key: Any = None) -> None:
        """`where(flag)` keeps items whose flag is false in fhirpathpy 2.x; `where(flag = true)` is exact."""
        found = self._BARE_BOOLEAN_FILTER.search(expression)
        if found:
            raise self.located.error(node, where, f"{found.group()[1:]} filters on a bare property; compare it: "
                                     f"'{found.group(1)}(... = true)'", key)

    def no_number_literals(self, expression: str, node: Any, where: str, key: Any = None) -> None:
        """Numbers belong in parameters, where their source is stated; expressions only name them."""
        without_strings = re.sub(r"'(?:[^'\\]|\\.)*'", "''", expression)
        found = self._NUMBER_LITERAL.search(without_strings)
        if found:
            raise self.located.error(node, where, f"numeric literal {found.group()} in an expression; make it a parameter", key)

    def drug_quotes(self, drug: dict[str, Any]) -> dict[str, Quote]:
        """Every quoted drug fact, keyed by its dotted path, with every number under it checked."""
        quotes: dict[str, Quote] = {}

        def numbers(node: Any, quote: Quote, path: str) -> None:
            """The numbers of a quoted fact, down to (not into) the next fact with its own quote."""
            items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
            for key, value in items:
                if key == "quote" or key in _UNCHECKED_NUMBERS:
                    continue
                where = f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]"
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.number_in_quote(float(value), quote, node, f"drug.{where}", key)
                elif isinstance(value, (dict, list)) and not (isinstance(value, dict) and "quote" in value):
                    numbers(value, quote, where)

        def walk(node: Any, path: str) -> None:
            if isinstance(node, dict):
                if "quote" in node:
                    quote = self.quote(node["quote"], f"drug.{path}")
                    quotes[path] = quote
                    numbers(node, quote, path)
                for key, value in node.items():
                    if key != "quote":
                        walk(value, f"{path}.{key}" if path else key)
            elif isinstance(node, list):
                for index, item in enumerate(node):
                    walk(item, f"{path}[{index}]")

        walk(drug.get("dosing", {}), "dosing")
        if "indication" in drug:
            walk({"indication": drug["indication"]}, "")
        return quotes
