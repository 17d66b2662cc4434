"""Every exported resource is valid FHIR: the official JSON schema of its version and the fhir.resources model.

R4 resources are checked against the HL7 R4 (4.0.1) schema and loaded with the R4B models (whose
JSON for these resources matches R4's); R5 resources against the R5 (5.0.0) schema and R5 models.
One test per resource, so a failure names the resource.
"""

from __future__ import annotations

import pytest
from fhir_checks import VERSIONS, exported, model_class, schema_errors

CASES = [(version, resource) for version in VERSIONS for resource in exported(version)]
IDS = [f"{version}-{r['resourceType']}-{r['id']}" for version, r in CASES]


@pytest.mark.parametrize(("version", "resource"), CASES, ids=IDS)
def test_resource_matches_official_schema(version, resource):
    assert schema_errors(version, resource) == []


@pytest.mark.parametrize(("version", "resource"), CASES, ids=IDS)
def test_resource_loads_with_fhir_resources_model(version, resource):
    model = model_class(version, resource["resourceType"]).model_validate(resource)
    # Loading and dumping again keeps every element: nothing was dropped as unknown.
    again = model.model_dump(mode="json", exclude_none=True)
    assert again["resourceType"] == resource["resourceType"]
    assert again["id"] == resource["id"]


@pytest.mark.parametrize("version", VERSIONS)
def test_bundles_match_official_schema_and_models(version, r4_bundle, r5_bundle):
    from fhir_module.fhir.bundle import build_bundle
    from fhir_checks import knowledge

    for bundle_type in ("collection", "transaction"):
        bundle = build_bundle(knowledge(), version, bundle_type)
        # The entries are checked one by one above; here the Bundle's own elements.
        shell = {**bundle, "entry": [{k: v for k, v in e.items() if k != "resource"} for e in bundle["entry"]]}
        assert schema_errors(version, shell) == []
        model_class(version, "Bundle").model_validate(shell)


@pytest.mark.parametrize("version", VERSIONS)
def test_schema_check_is_not_vacuous(version):
    """The checker reports an unknown element and a wrong type (so a passing test means something)."""
    resource = dict(next(r for r in exported(version) if r["resourceType"] == "MedicationKnowledge"))
    resource["notAnElement"] = True
    resource["status"] = 7
    errors = schema_errors(version, resource)
    assert any("notAnElement" in e for e in errors)
    assert any(e.startswith("status") for e in errors)
    with pytest.raises(ValueError):
        model_class(version, "MedicationKnowledge").model_validate(resource)


MY_TYPES = ("MedicationKnowledge", "DocumentReference", "Library", "ClinicalUseDefinition")
PROFILED = [(v, r) for v, r in CASES if r["resourceType"] in MY_TYPES]


@pytest.mark.parametrize(("version", "resource"), PROFILED,
                         ids=[f"{v}-{r['resourceType']}-{r['id']}" for v, r in PROFILED])
def test_resource_conforms_to_its_declared_profile(version, resource):
    """The module's validator (profiles with snapshots, invariants, bindings) finds no error or warning."""
    from fhir_module.validation import validate

    outcome = validate(resource, fhir_version=version)
    problems = [i for i in outcome["issue"] if i["severity"] in ("fatal", "error", "warning")]
    assert problems == []


def test_profile_check_is_not_vacuous():
    """A product MedicationKnowledge without its strength breaks its declared profile."""
    from fhir_module.validation import validate

    product = next(r for r in exported("R4") if r["resourceType"] == "MedicationKnowledge" and "meta" in r)
    broken = {**product, "ingredient": [{k: v for k, v in product["ingredient"][0].items() if k != "strength"}]}
    outcome = validate(broken, fhir_version="R4")
    assert any(i["severity"] == "error" and "strength" in i.get("diagnostics", "") for i in outcome["issue"])
