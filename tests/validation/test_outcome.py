"""The OperationOutcome contract: shape, layers named, locations, versions, profiles, no crashes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from fhir_module.fhir import canonical
from fhir_module.validation import has_errors, validate
from fhir_module.validation.conformance import Walker
from fhir_module.validation.definitions import StructureIndex, definitions
from fhir_module.validation.terminology import Terminology

CORPUS = Path(__file__).parent / "corpus"


def _load(kind: str, name: str) -> dict:
    return json.loads((CORPUS / kind / f"{name}.json").read_text(encoding="utf-8"))


def test_all_good_is_one_information_issue() -> None:
    outcome = validate({"resourceType": "Patient", "id": "p", "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">p</div>'}})
    assert outcome == {"resourceType": "OperationOutcome", "issue": [{"severity": "information", "code": "informational", "diagnostics": "No issues"}]}
    assert not has_errors(outcome)


def test_dict_text_and_bytes_give_the_same_outcome() -> None:
    resource = _load("invalid", "missing-profile-trigger")
    text = json.dumps(resource)
    assert validate(resource) == validate(text) == validate(text.encode())


def test_each_issue_names_its_layer() -> None:
    layers = {
        "json": validate(b'{"resourceType": "Patient", "active": null}'),
        "schema": validate({"resourceType": "Patient", "activ": True}),
        "model": validate(_load("invalid", "clinicalusedefinition-r5-missing-type")),
        "profile": validate(_load("invalid", "missing-monograph")),
        "terminology": validate(_load("invalid", "bad-code-topic-in-bundle")),
        "invariant": validate(_load("invalid", "invariant-per-1")),
    }
    for layer, outcome in layers.items():
        assert any(i["diagnostics"].startswith(f"[{layer}]") and i["severity"] == "error" for i in outcome["issue"]), (layer, outcome)


def test_bundle_issue_is_located_inside_its_entry() -> None:
    outcome = validate(_load("invalid", "bundle-entry-invalid-resource"))
    locations = [i.get("expression", [None])[0] for i in outcome["issue"] if i["severity"] == "error"]
    assert locations == ["Bundle.entry[1].resource.action[0].action[0]"]


def test_r5_detected_from_r5_only_type_and_forced_by_argument() -> None:
    r5_only = _load("valid", "clinicalusedefinition-r5")
    assert not has_errors(validate(r5_only))
    outcome = validate(r5_only, fhir_version="R4")
    assert any("Unknown resource type 'ClinicalUseDefinition'" in i["diagnostics"] for i in outcome["issue"])


def test_unsupported_version_is_a_clear_issue() -> None:
    outcome = validate({"resourceType": "Patient"}, fhir_version="DSTU2")
    assert outcome["issue"][0]["severity"] == "fatal" and "Unsupported FHIR version" in outcome["issue"][0]["diagnostics"]


def test_explicit_profile_applies_without_meta_profile() -> None:
    plain = {"resourceType": "PlanDefinition", "id": "x", "status": "active"}
    assert not has_errors(validate(plain))
    outcome = validate(plain, profiles=[canonical.PROFILE_PLAN_DEFINITION])
    assert has_errors(outcome)
    assert any(i.get("expression") == ["PlanDefinition.url"] for i in outcome["issue"])


def test_unknown_explicit_profile_is_an_error_unknown_declared_profile_a_warning() -> None:
    plain = {"resourceType": "PlanDefinition", "id": "x", "status": "active"}
    assert has_errors(validate(plain, profiles=["http://example.org/StructureDefinition/nope"]))
    declared = dict(plain, meta={"profile": ["http://example.org/StructureDefinition/nope"]})
    outcome = validate(declared)
    assert not has_errors(outcome)
    assert any(i["severity"] == "warning" and i.get("expression") == ["PlanDefinition.meta.profile"] for i in outcome["issue"])


def test_profile_of_another_type_is_an_error() -> None:
    library = _load("valid", "library")
    library["meta"]["profile"] = [canonical.PROFILE_PLAN_DEFINITION]
    assert has_errors(validate(library))


def test_rule_topic_checked_against_the_code_system_in_the_bundle() -> None:
    bundle = _load("valid", "bundle-collection")
    assert not has_errors(validate(bundle))
    broken = copy.deepcopy(bundle)
    for entry in broken["entry"]:
        if entry["resource"]["resourceType"] == "CodeSystem":
            entry["resource"]["concept"] = [c for c in entry["resource"]["concept"] if c["code"] != "max-dose"]
    assert has_errors(validate(broken))


def test_invariant_fhirpathpy_cannot_evaluate_is_information_not_a_crash() -> None:
    sd = {
        "url": "http://example.org/StructureDefinition/resolving", "type": "MedicationKnowledge", "derivation": "constraint",
        "snapshot": {"element": [{"id": "MedicationKnowledge", "path": "MedicationKnowledge", "min": 0, "max": "*",
                                  "constraint": [{"key": "tst-1", "severity": "error", "human": "source resolves",
                                                  "expression": "monograph.source.resolve().exists()"}]}]},
    }
    resource = _load("valid", "medicationknowledge")
    issues = Walker(definitions(), Terminology(), resource, "MedicationKnowledge", {}).check(StructureIndex(sd))
    assert [(i.severity, i.code, i.source) for i in issues] == [("information", "informational", "tst-1")]
    assert "not checked" in issues[0].message


@pytest.mark.parametrize("garbage", [b"", b"\xff\xfe", "[]", "42", '{"resourceType": 7}', b'{"a": 1', "null"])
def test_garbage_gives_a_fatal_issue(garbage: str | bytes) -> None:
    outcome = validate(garbage)
    assert outcome["issue"][0]["severity"] == "fatal"


def test_structurally_odd_content_never_crashes_the_profile_layer() -> None:
    odd = _load("valid", "plandefinition")
    odd["action"] = [{"trigger": "named-event", "condition": [7, None], "code": {"coding": "x"}}, "text"]
    outcome = validate(odd)
    assert has_errors(outcome)
    assert not any(i["code"] == "exception" for i in outcome["issue"]), outcome
