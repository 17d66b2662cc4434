"""Code membership for required bindings.

Three sources, the closest first: ValueSets and CodeSystems in the content being validated (an exported
bundle carries the module's own), the module's profile package (profiles/), and the expansions of the core
value sets that core R4 binds with strength `required` (shipped, precomputed by profiles/tooling).
A value set that includes a whole code system whose concepts are not at hand can only be checked by
system; a value set that cannot be expanded at all is reported as not checked, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable

import orjson

from fhir_module.validation.definitions import _definitions_dir, definitions


@dataclass
class Expansion:
    """Codes by system; a system mapped to None accepts any code of that system (not verifiable here)."""

    complete: bool
    codes: dict[str, frozenset[str] | None] = field(default_factory=dict)

    def contains(self, system: str | None, code: str) -> bool | None:
        """True/False when known, None when this expansion cannot tell.

        `system` is None for a bare `code` element, which may come from any system of the value set.
        """
        if system is not None:
            if system not in self.codes:
                return False if self.complete else None
            members = self.codes[system]
            if members is None:
                return None
            return True if code in members else (False if self.complete else None)
        unknown = not self.complete
        for members in self.codes.values():
            if members is None:
                unknown = True
            elif code in members:
                return True
        return None if unknown else False


@lru_cache(maxsize=None)
def _core_expansions() -> dict[str, Expansion]:
    path = _definitions_dir().joinpath("r4", "required-valuesets.json")
    raw = orjson.loads(path.read_bytes())
    return {
        url: Expansion(v["complete"], {s: frozenset(c) for s, c in v["codes"].items()})
        for url, v in raw.items()
    }


def _concept_codes(concepts: Iterable[dict[str, Any]] | None) -> set[str]:
    out: set[str] = set()
    for concept in concepts or []:
        if isinstance(concept, dict) and isinstance(concept.get("code"), str):
            out.add(concept["code"])
            out |= _concept_codes(concept.get("concept"))
    return out


class Terminology:
    """Value sets visible to one validation run."""

    def __init__(self, document_resources: Iterable[dict[str, Any]] = ()) -> None:
        self._value_sets: dict[str, dict[str, Any]] = {}
        self._code_systems: dict[str, dict[str, Any]] = {}
        for resource in [*definitions().module_value_sets, *document_resources]:
            url = resource.get("url")
            if not isinstance(url, str):
                continue
            if resource.get("resourceType") == "ValueSet":
                self._value_sets[url] = resource
            elif resource.get("resourceType") == "CodeSystem":
                self._code_systems[url] = resource
        self._cache: dict[str, Expansion | None] = {}

    def local_codes(self, system: Any) -> frozenset[str] | None:
        """The codes of a complete CodeSystem at hand (the validated content's, or the module profiles')."""
        cs = self._code_systems.get(system) if isinstance(system, str) else None
        if cs is None or cs.get("content") != "complete":
            return None
        return frozenset(_concept_codes(cs.get("concept")))

    def expansion(self, url: str) -> Expansion | None:
        url = url.split("|", 1)[0]
        if url not in self._cache:
            self._cache[url] = None  # guards against value sets that include themselves
            vs = self._value_sets.get(url)
            self._cache[url] = self._expand(vs) if vs else _core_expansions().get(url)
        return self._cache[url]

    def _expand(self, vs: dict[str, Any]) -> Expansion:
        result = Expansion(complete=True)

        def add(system: str, codes: frozenset[str] | None) -> None:
            if codes is None or result.codes.get(system, frozenset()) is None:
                result.codes[system] = None
            else:
                result.codes[system] = (result.codes.get(system) or frozenset()) | codes

        compose = vs.get("compose") if isinstance(vs.get("compose"), dict) else {}
        for include in compose.get("include", []) if isinstance(compose.get("include"), list) else []:
            if not isinstance(include, dict):
                continue
            for inner in include.get("valueSet", []) or []:
                sub = self.expansion(inner) if isinstance(inner, str) else None
                if sub is None:
                    result.complete = False
                    continue
                result.complete &= sub.complete
                for system, codes in sub.codes.items():
                    add(system, codes)
            system = include.get("system")
            if not isinstance(system, str):
                continue
            if include.get("concept"):
                add(system, frozenset(_concept_codes(include["concept"])))
            elif include.get("filter"):
                result.complete = False
            else:
                cs = self._code_systems.get(system)
                if cs is not None and cs.get("content") == "complete":
                    add(system, frozenset(_concept_codes(cs.get("concept"))))
                else:
                    add(system, None)
        if compose.get("exclude"):
            result.complete = False
        expansion = vs.get("expansion")
        if not compose and isinstance(expansion, dict):
            for item in expansion.get("contains", []) or []:
                if isinstance(item, dict) and isinstance(item.get("system"), str) and isinstance(item.get("code"), str):
                    add(item["system"], frozenset([item["code"]]))
        return result
