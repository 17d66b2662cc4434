"""The validation corpus: every broken resource is caught at the right location, every valid variant passes.

`corpus/cases.json` lists each file with what is wrong with it and the FHIRPath location (and issue code)
at which an error must be reported.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_module.validation import has_errors, validate

CORPUS = Path(__file__).parent / "corpus"
CASES = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))


def _errors(outcome: dict) -> list[dict]:
    return [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")]


@pytest.mark.parametrize("name", sorted(CASES["valid"]))
def test_valid_variant_passes(name: str) -> None:
    outcome = validate((CORPUS / "valid" / name).read_bytes())
    assert not has_errors(outcome), _errors(outcome)


@pytest.mark.parametrize("name", sorted(CASES["invalid"]))
def test_broken_resource_is_caught_at_its_location(name: str) -> None:
    case = CASES["invalid"][name]
    outcome = validate((CORPUS / "invalid" / name).read_bytes())
    errors = _errors(outcome)
    assert errors, f"{name} ({case['what']}) passed validation"
    for expected in case["expect"]:
        found = [
            e for e in errors
            if (e.get("expression") or [None])[0] == expected["expression"]
            and ("code" not in expected or e["code"] == expected["code"])
        ]
        assert found, f"{name}: no {expected} among {[(e.get('expression'), e['code'], e['diagnostics']) for e in errors]}"


def test_corpus_covers_each_kind_of_error() -> None:
    names = " ".join(CASES["invalid"])
    assert len(CASES["invalid"]) >= 30
    for kind in ("wrong-type", "missing-", "cardinality-above-max", "bad-code", "invariant-", "fixed-",
                 "unknown-element", "bad-date", "slice-", "bundle-entry", "json-"):
        assert kind in names, kind


def test_corpus_files_are_all_listed() -> None:
    on_disk = {(p.parent.name, p.name) for p in CORPUS.glob("*/*.json")}
    listed = {(kind, name) for kind in ("valid", "invalid") for name in CASES[kind]}
    assert on_disk == listed
