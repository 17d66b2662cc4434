"""StructureDefinitions the profile layer reads: the R4 base (resources and data types) and the
module's profiles, both shipped as package data (see fhir_module/data/definitions/SOURCE.md).

A `StructureIndex` arranges one snapshot for walking an instance: the child definitions of each element,
and the slices of each sliced element. Indexes are built on first use and kept.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from typing import Any

import orjson  # the shipped data read as json reads it (tests/validation/test_shipped_data_read.py), faster

HL7_SD = "http://hl7.org/fhir/StructureDefinition/"

# FHIR primitive types: values of these have no child elements to walk (only id and extension).
PRIMITIVES = frozenset(
    "base64Binary boolean canonical code date dateTime decimal id instant integer markdown oid "
    "positiveInt string time unsignedInt uri url uuid xhtml".split()
)


def _definitions_dir() -> Any:
    return resources.files("fhir_module.data").joinpath("definitions")


@dataclass(frozen=True)
class ChildTable:
    """The child definitions of one element, arranged to find an instance's keys quickly.

    `by_name` maps a JSON property to its definition; `choices` lists (prefix, definition) of the
    `x[x]` elements; `always` holds the definitions to check even when absent (minimum cardinality,
    required slices).
    """

    children: tuple[dict[str, Any], ...]
    by_name: dict[str, dict[str, Any]]
    choices: tuple[tuple[str, dict[str, Any]], ...]
    always: frozenset[str]


# Invariants checked natively instead of through FHIRPath: ele-1 (an element has a value or
# children) is the JSON layer's empty-value rule, and evaluating it on every element would dominate
# the run time.
NATIVE_INVARIANTS = frozenset({"ele-1"})


@dataclass(frozen=True)
class Facets:
    """What one element definition asks of a value (extracted once from the element's many keys).

    `constraints`: the invariants to evaluate, in order: the element's own, then those of the element
    a `contentReference` repeats (PlanDefinition.action.action keeps the rules of action), each with
    an expression and not checked natively."""

    fixed: tuple[tuple[str, Any], ...]
    patterns: tuple[tuple[str, Any], ...]
    constraints: tuple[dict[str, Any], ...] = ()


def _prefixed(element: dict[str, Any], prefix: str) -> tuple[tuple[str, Any], ...]:
    return tuple(
        (k, v) for k, v in element.items() if k.startswith(prefix) and len(k) > len(prefix) and k[len(prefix)].isupper()
    )


class StructureIndex:
    """One StructureDefinition snapshot, indexed by element id."""

    def __init__(self, sd: dict[str, Any]) -> None:
        self.url: str = sd["url"]
        self.type: str = sd["type"]
        self.kind: str = sd.get("kind", "")
        self.is_profile = sd.get("derivation") == "constraint"
        elements = sd["snapshot"]["element"]
        self.root: dict[str, Any] = elements[0]
        self.by_id: dict[str, dict[str, Any]] = {e["id"]: e for e in elements}
        self.children: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.slices: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for element in elements[1:]:
            parent, _, last = element["id"].rpartition(".")
            if ":" in last:
                name, _, _slice = last.partition(":")
                self.slices[f"{parent}.{name}"].append(element)
            else:
                self.children[parent].append(element)
        self._tables: dict[str, ChildTable] = {}
        self._facets: dict[str, Facets] = {}

    def table(self, element_id: str) -> ChildTable:
        """The children of `element_id`, arranged for lookup by instance key (built once)."""
        table = self._tables.get(element_id)
        if table is None:
            children = tuple(self.children.get(element_id, ()))
            by_name, choices, always = {}, [], set()
            for child in children:
                name = child["path"].rpartition(".")[2]
                if name.endswith("[x]"):
                    choices.append((name[:-3], child))
                else:
                    by_name[name] = child
                slices = self.slices.get(child["id"], ())
                if (child.get("min") or 0) > 0 or any((s.get("min") or 0) > 0 for s in slices):
                    always.add(child["id"])
            table = self._tables[element_id] = ChildTable(children, by_name, tuple(choices), frozenset(always))
        return table

    def facets(self, element: dict[str, Any]) -> Facets:
        facets = self._facets.get(element["id"])
        if facets is None:
            constraints = list(element.get("constraint", ()))
            ref = element.get("contentReference")
            if ref:
                constraints += self.by_id.get(ref.partition("#")[2], {}).get("constraint", [])
            facets = self._facets[element["id"]] = Facets(
                _prefixed(element, "fixed"), _prefixed(element, "pattern"),
                tuple(c for c in constraints if c.get("expression") and c.get("key", "") not in NATIVE_INVARIANTS))
        return facets


def _laid_out_objects(data: bytes) -> dict[str, tuple[int, int]] | None:
    """Where each core StructureDefinition is in the file, by URL, without parsing it: the file is
    the generator's `JSON.stringify(list, null, 2)`, so each object of the list starts at a line
    `  {`, ends at a line `  }`, and its own properties are the lines indented by four spaces. None
    when the file is not laid out so (then it is parsed whole)."""
    found: dict[str, tuple[int, int]] = {}
    for match in _OBJECT_START.finditer(data):
        start = match.start() + 1
        end = data.find(b"\n  }", start)
        url = _OWN_URL.search(data, start, end) if end > 0 else None
        if url is None:
            return None
        found[json.loads(url.group(1))] = (start, end + len(b"\n  }"))
    return found or None


_OBJECT_START = re.compile(rb"\n  \{\n")
_OWN_URL = re.compile(rb'\n    "url": ("(?:[^"\\]|\\.)*")')
_OWN_FIELDS = {name: re.compile(rb'\n    "' + name + rb'": ("(?:[^"\\]|\\.)*")') for name in (b"type", b"derivation")}


def _own_field(data: bytes, place: tuple[int, int], name: bytes) -> str | None:
    """A string property of the laid-out definition at `place` (its own: four spaces in)."""
    found = _OWN_FIELDS[name].search(data, *place)
    return json.loads(found.group(1)) if found else None


class Definitions:
    """All StructureDefinitions known to the validator, by canonical URL.

    The core definitions (5 MB) are parsed one at a time, when asked for: the knowledge check at
    every start reads a few of them (the MedicationRequest an update suggestion writes into)."""

    def __init__(self) -> None:
        base_dir = _definitions_dir()
        self._core = base_dir.joinpath("r4", "structure-definitions.json").read_bytes()
        self._unparsed = _laid_out_objects(self._core) or {}
        self._sources: dict[str, dict[str, Any]] = {} if self._unparsed else {
            sd["url"]: sd for sd in orjson.loads(self._core)}
        self.module_value_sets: list[dict[str, Any]] = []
        profiles_dir = base_dir.joinpath("profiles")
        for entry in sorted(profiles_dir.iterdir(), key=lambda p: p.name):
            if not entry.name.endswith(".json"):
                continue
            resource = orjson.loads(entry.read_bytes())
            if resource.get("resourceType") == "StructureDefinition":
                self._unparsed.pop(resource["url"], None)
                self._sources[resource["url"]] = resource
            elif resource.get("resourceType") in ("ValueSet", "CodeSystem"):
                self.module_value_sets.append(resource)
        self._indexes: dict[str, StructureIndex] = {}

    def _source(self, url: str) -> dict[str, Any] | None:
        sd = self._sources.get(url)
        if sd is None and url in self._unparsed:
            start, end = self._unparsed.pop(url)
            sd = self._sources[url] = orjson.loads(self._core[start:end])
        return sd

    def _all(self) -> dict[str, dict[str, Any]]:
        for url in list(self._unparsed):
            self._source(url)
        return self._sources

    def get(self, url: str) -> StructureIndex | None:
        """The index of the StructureDefinition with this canonical (a `|version` suffix is ignored)."""
        url = url.split("|", 1)[0]
        index = self._indexes.get(url)
        if index is None:
            sd = self._source(url)
            if sd is None or "snapshot" not in sd:
                return None
            index = self._indexes[url] = StructureIndex(sd)
        return index

    def base(self, type_name: str) -> StructureIndex | None:
        """The core definition of a resource or data type."""
        return self.get(HL7_SD + type_name)

    @cached_property
    def type_names(self) -> frozenset[str]:
        """Every data type and resource name (to recognise choice-type suffixes such as valueQuantity)."""
        # Read from each unparsed definition's own lines: the validator asks for it on most content,
        # and parsing all 212 for their type would undo the lazy reading.
        parsed = [(sd["type"], sd.get("derivation")) for sd in self._sources.values()]
        unparsed = [(_own_field(self._core, place, b"type"), _own_field(self._core, place, b"derivation"))
                    for place in self._unparsed.values()]
        return frozenset(name for name, derivation in parsed + unparsed if derivation != "constraint") | PRIMITIVES

    @cached_property
    def resource_types(self) -> list[str]:
        """The concrete resource types of the core definitions, sorted."""
        return sorted(sd["type"] for sd in self._all().values() if sd.get("kind") == "resource"
                      and sd.get("derivation") == "specialization" and not sd.get("abstract"))

    @cached_property
    def module_profiles(self) -> list[str]:
        return sorted(url for url, sd in self._all().items() if sd.get("derivation") == "constraint" and "fhir-module.org" in url)

    def type_of_profile(self, url: str) -> str | None:
        sd = self._source(url.split("|", 1)[0])
        return sd["type"] if sd else None


@lru_cache(maxsize=None)
def definitions() -> Definitions:
    return Definitions()
