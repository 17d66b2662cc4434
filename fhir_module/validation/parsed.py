"""fhirpathpy's parse of every invariant the shipped definitions hold, made ahead of time.

fhirpathpy parses with an ANTLR parser in pure Python: the few dozen invariants a bundle reaches
took ~0.09 s of each `validate` command to parse. The parse trees are plain JSON, so they are
written once, by fhirpathpy's own parser, to `fhir_module/data/definitions/fhirpath-parsed.json`:

    python -m fhir_module.validation.parsed    # rewrites the file from the shipped definitions

tests/validation/test_parsed_invariants.py fails when the file is not what this writes (new
definitions, another fhirpathpy). An expression the file lacks is parsed at run time, as before,
and so is every expression while the installed fhirpathpy's parser is not the one that wrote the
file (its digest is kept with the trees; see engine/fhirpath/installed.py): another parser's trees
could mean something else to its evaluator.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import orjson

from fhir_module.engine.fhirpath import installed
from fhir_module.validation.definitions import _definitions_dir, definitions

FILE = "fhirpath-parsed.json"
# fhirpathpy's parser: the folder whose files make the trees.
PARSER = "parser"


def expressions() -> list[str]:
    """Every invariant expression of the shipped definitions (core R4 and the module's profiles)."""
    found = {constraint["expression"]
             for sd in definitions()._all().values() for element in sd.get("snapshot", {}).get("element", ())
             for constraint in element.get("constraint", ()) if isinstance(constraint.get("expression"), str)}
    return sorted(found)


def build() -> str:
    """The file's text: the digest of fhirpathpy's parser, and each expression it parses with its
    parse tree as JSON text (a string: a bundle reaches a few dozen of ~200, and only those are
    decoded)."""
    from fhirpathpy.parser import parse

    trees = {}
    for expression in expressions():
        try:
            trees[expression] = json.dumps(parse(expression), separators=(",", ":"))
        except Exception:  # noqa: BLE001 - left to the run time, which reports it as not checkable
            continue
    return json.dumps({"parser": installed.digest(PARSER), "trees": trees}, indent=0) + "\n"


@lru_cache(maxsize=None)
def _trees() -> dict[str, str]:
    """The file's trees, while the installed fhirpathpy's parser is the one that made them."""
    written = orjson.loads(_definitions_dir().joinpath(FILE).read_bytes())
    if written["parser"] is None or written["parser"] != installed.digest(PARSER):
        return {}
    return written["trees"]


def parsed(expression: str) -> Any | None:
    """fhirpathpy's parse tree of `expression` when the file holds it, else None (parse it)."""
    tree = _trees().get(expression)
    return orjson.loads(tree) if tree is not None else None


if __name__ == "__main__":
    _definitions_dir().joinpath(FILE).write_text(build(), encoding="utf-8")  # type: ignore[attr-defined]
