"""The validator reads its shipped data (definitions, profiles, schemas, value set expansions, parse
trees) with orjson, in about half json's time: for each of those files orjson's reading is json's,
value for value (compared as JSON text, so 1 and 1.0, or true and 1, would differ)."""

from __future__ import annotations

import json
from importlib import resources

import orjson
import pytest

from fhir_module.validation import parsed
from fhir_module.validation.definitions import _definitions_dir

DEFINITIONS = _definitions_dir()
SCHEMAS = resources.files("fhir_module.data.schemas")
FILES = [
    DEFINITIONS.joinpath("r4", "structure-definitions.json"),
    DEFINITIONS.joinpath("r4", "required-valuesets.json"),
    DEFINITIONS.joinpath(parsed.FILE),
    SCHEMAS.joinpath("fhir.r4.schema.json"),
    SCHEMAS.joinpath("fhir.r5.schema.json"),
    *sorted((p for p in DEFINITIONS.joinpath("profiles").iterdir() if p.name.endswith(".json")), key=lambda p: p.name),
]


def _text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_orjson_reads_the_file_as_json_does(path) -> None:
    data = path.read_bytes()
    assert _text(orjson.loads(data)) == _text(json.loads(data.decode("utf-8")))


def test_orjson_reads_each_parse_tree_as_json_does() -> None:
    for tree in json.loads(DEFINITIONS.joinpath(parsed.FILE).read_bytes())["trees"].values():
        assert _text(orjson.loads(tree)) == _text(json.loads(tree))
