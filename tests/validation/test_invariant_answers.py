"""The invariant answers one validation remembers (invariants.evaluate's `answers`: by expression,
type path and the value's JSON text, for the invariants that read nothing but the value) change no
issue: the profile layer gives the same issues, in the same order, with and without them, over the
exported bundles, the corpus and a bundle of broken resources whose failing values repeat."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from fhir_module.fhir.bundle import build_bundle
from fhir_module.knowledge import builtin_module_dirs, load_knowledge
from fhir_module.validation import invariants, validate, wellformed
from fhir_module.validation.validator import _profile_layer, _resources

CORPUS = Path(__file__).parent / "corpus"


def _issues(resource: dict, answers: invariants.Answers | None) -> list[tuple]:
    return [(i.severity, i.code, i.message, i.location, i.layer, i.source)
            for i in _profile_layer(_resources(resource), "R4", [], answers)]


def _same_with_and_without(resource: dict) -> list[tuple]:
    answers: invariants.Answers = {}
    remembered = _issues(resource, answers)
    assert remembered == _issues(resource, None)
    return remembered


def _broken_repeats() -> dict:
    """Resources whose invariants fail (ext-1, per-1, txt-2 ...), each twice, with an answer that
    fhirpathpy cannot give (an exception) among them."""
    broken = []
    for name in ("invariant-ext-1.json", "invariant-per-1.json", "invariant-qty-3.json", "invariant-exp-1.json",
                 "invariant-mvs-1.json", "invariant-mdr-1.json", "invariant-mmk-1.json"):
        resource = json.loads((CORPUS / "invalid" / name).read_text(encoding="utf-8"))
        if resource["resourceType"] == "Bundle":
            broken += [entry["resource"] for entry in resource["entry"]]
        else:
            broken.append(resource)
    twice = broken + [dict(copy.deepcopy(r), id=f"{r.get('id', 'x')}-again") for r in broken]
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:00000000-0000-0000-0000-{i:012d}", "resource": r} for i, r in enumerate(twice)]}


def test_exported_bundles_give_the_same_issues() -> None:
    for folder in builtin_module_dirs():
        _same_with_and_without(build_bundle(load_knowledge(folder), "R4"))


def test_broken_resources_repeated_give_the_same_issues_and_fail() -> None:
    issues = _same_with_and_without(_broken_repeats())
    failed = {i[5] for i in issues if i[1] == "invariant"}
    assert {"ext-1", "per-1"} <= failed, failed
    # Each failure is reported at each place it occurs, the repeated ones too.
    ext = [i[3] for i in issues if i[5] == "ext-1" and i[1] == "invariant"]
    assert len(ext) >= 2 and len(set(ext)) == len(ext)


@pytest.mark.parametrize("kind", ["valid", "invalid"])
def test_the_corpus_gives_the_same_issues(kind: str) -> None:
    for path in sorted((CORPUS / kind).glob("*.json")):
        resource, fatal = wellformed.parse(path.read_bytes())
        if resource is not None:
            _same_with_and_without(resource)


def test_answers_are_only_remembered_for_invariants_of_the_value_alone() -> None:
    answers: invariants.Answers = {}
    resource = {"resourceType": "Basic", "id": "b", "code": {"text": "x"}}
    extension = {"url": "http://example.org/x", "valueString": "y"}
    assert invariants.evaluate("extension.exists() != value.exists()", extension, "Extension", resource, answers) is True
    assert invariants.evaluate("%resource.id.exists()", extension, "Extension", resource, answers) is True
    assert invariants.evaluate("today().exists()", extension, "Extension", resource, answers) is True
    assert [key[0] for key in answers] == ["extension.exists() != value.exists()"]
    assert validate(resource)["issue"][0]["severity"] != "error"
