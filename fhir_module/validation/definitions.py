"""StructureDefinitions the profile layer reads: the R4 base (resources and data types) and the
module's profiles, both shipped as package data (see fhir_module/data/definitions/SOURCE.md).

A `StructureIndex` arranges one snapshot for walking an instance: the child definitions of each element,
and the slices of each sliced element. Indexes are built on first use and kept.
"""

from __future__ import annotations

import json
from collections import defaultdict
from functools import cached_property, lru_cache
from importlib import resources
from typing import Any

HL7_SD = "http://hl7.org/fhir/StructureDefinition/"

# FHIR primitive types: values of these have no child elements to walk (only id and extension).
PRIMITIVES = frozenset(
    "base64Binary boolean canonical code date dateTime decimal id instant integer markdown oid "
    "positiveInt string time unsignedInt uri url uuid xhtml".split()
)


def _definitions_dir() -> Any:
    return resources.files("fhir_module.data").joinpath("definitions")


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


class Definitions:
    """All StructureDefinitions known to the validator, by canonical URL."""

    def __init__(self) -> None:
        base_dir = _definitions_dir()
        base = json.loads(base_dir.joinpath("r4", "structure-definitions.json").read_text(encoding="utf-8"))
        self._sources: dict[str, dict[str, Any]] = {sd["url"]: sd for sd in base}
        self.module_value_sets: list[dict[str, Any]] = []
        profiles_dir = base_dir.joinpath("profiles")
        for entry in sorted(profiles_dir.iterdir(), key=lambda p: p.name):
            if not entry.name.endswith(".json"):
                continue
            resource = json.loads(entry.read_text(encoding="utf-8"))
            if resource.get("resourceType") == "StructureDefinition":
                self._sources[resource["url"]] = resource
            elif resource.get("resourceType") in ("ValueSet", "CodeSystem"):
                self.module_value_sets.append(resource)
        self._indexes: dict[str, StructureIndex] = {}

    def get(self, url: str) -> StructureIndex | None:
        """The index of the StructureDefinition with this canonical (a `|version` suffix is ignored)."""
        url = url.split("|", 1)[0]
        index = self._indexes.get(url)
        if index is None:
            sd = self._sources.get(url)
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
        return frozenset(sd["type"] for sd in self._sources.values() if sd.get("derivation") != "constraint") | PRIMITIVES

    @cached_property
    def module_profiles(self) -> list[str]:
        return sorted(url for url, sd in self._sources.items() if sd.get("derivation") == "constraint" and "fhir-module.org" in url)

    def type_of_profile(self, url: str) -> str | None:
        sd = self._sources.get(url.split("|", 1)[0])
        return sd["type"] if sd else None


@lru_cache(maxsize=None)
def definitions() -> Definitions:
    return Definitions()
