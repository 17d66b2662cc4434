"""The FHIR type paths fhirpathpy gives values, from the R4 model: what decides whether a name is a
choice element (`value` is `valueQuantity` on an Observation) and whether `=`, `+` and `-` convert
a value by its type. The compiler works out at compile time which paths a value may have.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

import orjson

from .installed import package_folder


def _r4_model() -> dict[str, Any]:
    """fhirpathpy's R4 model, read from the files `fhirpathpy.models` reads. Importing that module
    reads the model of every FHIR version (1.5 MB of JSON, at every start); only R4 is used. The
    package folder is found without importing fhirpathpy (its parser and evaluator), which the
    service's start does not otherwise need."""
    package = package_folder()
    if package is None:
        raise ImportError("fhirpathpy is not installed")
    folder = package / "models" / "r4"
    return {entry.name[:-len(".json")]: orjson.loads(entry.read_bytes())
            for entry in folder.iterdir() if entry.name.endswith(".json")}


# What fhirpathpy's evaluation takes as its `model` (choice elements, types, parents).
R4_MODEL: dict[str, Any] = _r4_model()
_MODEL = R4_MODEL
_CHOICES: Mapping[str, list[str]] = _MODEL["choiceTypePaths"]
_ELSEWHERE: Mapping[str, str] = _MODEL["pathsDefinedElsewhere"]
_TYPES: Mapping[str, str] = _MODEL["path2Type"]
# Every path the model knows starts with a resource or data type name: any of them may be the
# type of a JSON object that names its resourceType.
_ROOT_TYPES = frozenset(path.split(".", 1)[0] for table in (_CHOICES, _ELSEWHERE, _TYPES) for path in table)
UNTYPED = "_"  # the path of values reached from a JSON object that names no resourceType
CHOICE_KEYS = frozenset(path.rsplit(".", 1)[-1] for path in _CHOICES)
# Types whose values fhirpathpy converts before `=` (Quantity) or `+`/`-` (dates and times).
EQUALITY_CONVERTED = frozenset({"Quantity"})
ARITHMETIC_CONVERTED = frozenset({"date", "dateTime", "time"})

UNTYPED_ONLY = frozenset({UNTYPED})


@lru_cache(maxsize=4096)
def child_paths(parents: frozenset[str], key: str) -> frozenset[str]:
    """The type paths fhirpathpy gives the values of `key` under values of these paths (or under
    any resource: a JSON object naming its resourceType is typed by it, wherever it is)."""
    found = set()
    for parent in parents | _ROOT_TYPES:
        if key == "extension":
            found.add(_TYPES.get("Extension", "Extension"))
            continue
        if parent == UNTYPED:
            found.add(UNTYPED)
            continue
        child = _ELSEWHERE.get(f"{parent}.{key}", f"{parent}.{key}")
        for typed in [child + suffix for suffix in _CHOICES[child]] if child in _CHOICES else [child]:
            found.add(_TYPES.get(typed, typed))
    return frozenset(found)


def deep_choice(parents: frozenset[str] | None, key: str) -> bool:
    """Whether `key` may be a choice element of a value that names no resourceType."""
    if parents is None:
        return key in CHOICE_KEYS or key == "extension"
    return any(_ELSEWHERE.get(f"{p}.{key}", f"{p}.{key}") in _CHOICES for p in parents if p != UNTYPED)


def choice(item: dict, key: str) -> tuple[Any, Any]:
    """A choice element (`value` → `valueQuantity`, ...) of a resource, as the model types it."""
    path = f"{item['resourceType']}.{key}"
    path = _ELSEWHERE.get(path, path)
    types = _CHOICES.get(path)
    if not types:
        return item.get(key), item.get("_" + key)
    for suffix in types:
        value, extension = item.get(key + suffix), item.get(f"_{key}{suffix}")
        if value is not None or extension is not None:
            return value, extension
    return None, None
