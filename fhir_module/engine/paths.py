"""dynamicValue paths of an update suggestion: where its values go in the MedicationRequest the
ActivityDefinition creates (`set_path`), and whether a path can go there at all (`path_problem`, for
the knowledge check)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

# An update's dynamicValue paths address the MedicationRequest the ActivityDefinition creates (FHIR:
# "the path on the resource that will hold the result"): its dosageInstruction, which starts as the
# definition's dosage (`dosageInstruction[0].doseAndRate[0].doseQuantity.value`).
DYNAMIC_VALUE_BASE = "MedicationRequest"
DOSAGE_ELEMENT = "dosageInstruction"
_NUMBERS = ("decimal", "integer", "positiveInt", "unsignedInt")
_STEP = re.compile(r"([A-Za-z_]\w*)(?:\[(\d+)\])?")
_PATH = re.compile(r"[A-Za-z_]\w*(?:\[\d+\])?(?:\.[A-Za-z_]\w*(?:\[\d+\])?)*")


def path_problem(definition: dict[str, Any], path: str) -> str | None:
    """Why an update could not put its value at `path` of the MedicationRequest this ActivityDefinition
    creates (None when it can): each step must be an element FHIR defines there, and each indexed step
    a phase or item the definition's dosage has (`set_path` would otherwise invent one)."""
    from fhir_module.validation.definitions import PRIMITIVES, definitions

    if not _PATH.fullmatch(path):
        return "is not a path of element names and [n] indexes"
    steps = _STEP.findall(path)
    if steps[0][0] != DOSAGE_ELEMENT:
        return f"does not address the {DOSAGE_ELEMENT}, the only part of the order an update proposes"
    structure, element_id = definitions().base(DYNAMIC_VALUE_BASE), DYNAMIC_VALUE_BASE
    node: Any = {DOSAGE_ELEMENT: definition.get("dosage")}
    for position, (name, index) in enumerate(steps):
        if structure is None:
            return f"goes on with {name!r} after a primitive value"
        table = structure.table(element_id)
        child, type_name = table.by_name.get(name), None
        if child is not None:
            type_name = (child.get("type") or [{}])[0].get("code")
        else:
            for prefix, choice in table.choices:
                suffix = name[len(prefix):]
                if name.startswith(prefix) and suffix[:1].isupper() and any(
                        t.get("code", "").lower() == suffix.lower() for t in choice.get("type") or []):
                    child, type_name = choice, next(t["code"] for t in choice["type"] if t["code"].lower() == suffix.lower())
        if child is None:
            return f"names {name!r}, which is not an element of {element_id}"
        if position == len(steps) - 1 and type_name not in _NUMBERS:
            return f"ends at {name!r}, a {type_name}: an update sets a number there"
        if type_name in ("BackboneElement", "Element"):
            element_id = child["id"]
        elif type_name in PRIMITIVES or type_name is None or type_name.startswith("http://hl7.org/fhirpath"):
            structure, element_id = None, ""
        else:
            structure, element_id = definitions().base(type_name), type_name
        if index:
            items = node.get(name) if isinstance(node, dict) else None
            if not isinstance(items, list) or len(items) <= int(index):
                count = len(items) if isinstance(items, list) else 0
                return f"names {name}[{index}], but the definition has {count} {name} item(s)"
            node = items[int(index)]
        elif position < len(steps) - 1:
            node = node.get(name, {}) if isinstance(node, dict) else {}
    return None


@lru_cache(maxsize=1024)
def _steps(path: str) -> tuple[tuple[str, str], ...]:
    """The (name, index) steps of a path: the knowledge's few paths, read once each."""
    return tuple(_STEP.findall(path))


def set_path(resource: dict[str, Any], path: str, value: Any) -> None:
    """Set a simple FHIRPath-like path (`a[0].b.c`) in a resource, creating what is missing."""
    steps = _steps(path)
    node: Any = resource
    for position, (name, index) in enumerate(steps):
        last = position == len(steps) - 1
        if index:
            items = node.setdefault(name, [])
            while len(items) <= int(index):
                items.append({})
            if last:
                items[int(index)] = value
            node = items[int(index)]
        elif last:
            node[name] = value
        else:
            node = node.setdefault(name, {})
