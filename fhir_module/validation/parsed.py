"""fhirpathpy's parse of every invariant the shipped definitions hold, made ahead of time.

fhirpathpy parses with an ANTLR parser in pure Python: the few dozen invariants a bundle reaches
took ~0.09 s of each `validate` command to parse. The parse trees are plain JSON, so they are
written once, by fhirpathpy's own parser, to `fhir_module/data/definitions/fhirpath-parsed.json`:

    python -m fhir_module.validation.parsed    # rewrites the file from the shipped definitions

tests/validation/test_parsed_invariants.py fails when the file is not what this writes (new
definitions, another fhirpathpy). An expression the file lacks is parsed at run time, as before.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import orjson

from fhir_module.validation.definitions import _definitions_dir, definitions

FILE = "fhirpath-parsed.json"


def expressions() -> list[str]:
    """Every invariant expression of the shipped definitions (core R4 and the module's profiles)."""
    found = {constraint["expression"]
             for sd in definitions()._all().values() for element in sd.get("snapshot", {}).get("element", ())
             for constraint in element.get("constraint", ()) if isinstance(constraint.get("expression"), str)}
    return sorted(found)


def build() -> str:
    """The file's text: each expression fhirpathpy parses, with its parse tree as JSON text (a
    string: a bundle reaches a few dozen of ~200, and only those are decoded)."""
    from fhirpathpy.parser import parse

    trees = {}
    for expression in expressions():
        try:
            trees[expression] = json.dumps(parse(expression), separators=(",", ":"))
        except Exception:  # noqa: BLE001 - left to the run time, which reports it as not checkable
            continue
    return json.dumps(trees, indent=0) + "\n"


@lru_cache(maxsize=None)
def _trees() -> dict[str, str]:
    return orjson.loads(_definitions_dir().joinpath(FILE).read_bytes())


def parsed(expression: str) -> Any | None:
    """fhirpathpy's parse tree of `expression` when the file holds it, else None (parse it)."""
    tree = _trees().get(expression)
    return orjson.loads(tree) if tree is not None else None


if __name__ == "__main__":
    _definitions_dir().joinpath(FILE).write_text(build(), encoding="utf-8")  # type: ignore[attr-defined]
