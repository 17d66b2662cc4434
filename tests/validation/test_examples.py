"""The exported bundles in examples/ validate with no errors, against the base spec and the module's profiles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_module.validation import has_errors, validate
from fhir_module.validation.definitions import definitions

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BUNDLES = ["levomilnacipran-r4-collection.json", "levomilnacipran-r4-transaction.json", "levomilnacipran-r5-collection.json"]


@pytest.mark.parametrize("name", BUNDLES)
def test_exported_bundle_has_no_errors_or_warnings(name: str) -> None:
    outcome = validate((EXAMPLES / name).read_bytes())
    assert not has_errors(outcome), [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")][:10]
    assert not [i for i in outcome["issue"] if i["severity"] == "warning"]


@pytest.mark.parametrize("name", BUNDLES[:2])
def test_r4_artifacts_declare_the_module_profiles(name: str) -> None:
    bundle = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    declared = {p for e in bundle["entry"] for p in e["resource"].get("meta", {}).get("profile", [])}
    assert declared, "no entry declares a profile"
    assert declared <= set(definitions().module_profiles), declared - set(definitions().module_profiles)
    # every artifact type the module profiles is represented, so each profile is exercised by the export
    types = {definitions().type_of_profile(p) for p in declared}
    assert {"PlanDefinition", "MedicationKnowledge", "ValueSet", "CodeSystem", "Library", "DocumentReference", "ActivityDefinition"} <= types


def test_a_broken_export_is_caught() -> None:
    """The bundle test can fail: the same bundle with one rule's documentation removed has an error."""
    bundle = json.loads((EXAMPLES / BUNDLES[0]).read_text(encoding="utf-8"))
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "PlanDefinition":
            rule = next(a for a in resource["action"][0]["action"] if "documentation" in a)
            del rule["documentation"]
            break
    assert has_errors(validate(bundle))
