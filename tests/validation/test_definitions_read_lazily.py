"""The core StructureDefinitions are read one at a time (the knowledge check at every start needs a
few of 212): each one read so is the one the whole file holds, and every one is found."""

from __future__ import annotations

import json

from fhir_module.validation.definitions import Definitions, _definitions_dir, _laid_out_objects


def _whole_file() -> list[dict]:
    return json.loads(_definitions_dir().joinpath("r4", "structure-definitions.json").read_text(encoding="utf-8"))


def test_each_definition_read_alone_is_the_files() -> None:
    whole = _whole_file()
    definitions = Definitions()
    assert len(definitions._unparsed) == len(whole) > 200  # the file is laid out as expected: nothing parsed yet
    for sd in whole:
        assert definitions.get(sd["url"]) is not None or "snapshot" not in sd
        assert definitions._source(sd["url"]) == sd
    assert not definitions._unparsed


def test_the_derived_lists_are_those_of_the_whole_file() -> None:
    whole = _whole_file()
    definitions = Definitions()
    assert definitions.resource_types == sorted(
        sd["type"] for sd in whole if sd.get("kind") == "resource" and sd.get("derivation") == "specialization"
        and not sd.get("abstract"))
    lazily = Definitions()
    names = lazily.type_names  # read from the unparsed definitions' own lines
    assert len(lazily._unparsed) == len(whole)
    parsed = Definitions()
    parsed._all()
    assert not parsed._unparsed
    assert names == parsed.type_names
    assert {sd["type"] for sd in whole if sd.get("derivation") != "constraint"} <= names


def test_a_file_laid_out_otherwise_is_parsed_whole() -> None:
    whole = _whole_file()[:3]
    assert _laid_out_objects(json.dumps(whole).encode()) is None  # one line: no object boundaries to find
    laid_out = _laid_out_objects(json.dumps(whole, indent=2).encode())
    text = json.dumps(whole, indent=2).encode()
    assert {url: json.loads(text[start:end]) for url, (start, end) in laid_out.items()} == {sd["url"]: sd for sd in whole}
