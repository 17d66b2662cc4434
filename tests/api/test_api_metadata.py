"""`GET /fhir/metadata`: the CapabilityStatement of the $validate endpoint, valid R4, public."""

from __future__ import annotations

import json
from typing import Any

import httpx

from fhir_module.config import TrustedClient
from fhir_module.validation.validator import validate

VALIDATE = "http://hl7.org/fhir/OperationDefinition/Resource-validate"


def _errors(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in outcome["issue"] if i["severity"] in ("error", "fatal", "warning")]


def test_metadata_is_a_valid_capability_statement_for_validate(base_url: str) -> None:
    response = httpx.get(f"{base_url}/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement" and statement["kind"] == "instance"
    assert statement["fhirVersion"] == "4.0.1" and statement["status"] == "active"
    assert _errors(validate(json.dumps(statement).encode())) == []
    rest = statement["rest"][0]
    assert rest["mode"] == "server" and rest["operation"] == [{"name": "validate", "definition": VALIDATE}]
    types = {r["type"]: r for r in rest["resource"]}
    assert {"Patient", "PlanDefinition", "Bundle", "Parameters"} <= set(types)
    assert all(r["operation"] == [{"name": "validate", "definition": VALIDATE}] for r in rest["resource"])
    assert not any("interaction" in r for r in rest["resource"])  # nothing is read, searched or stored
    assert statement["implementation"]["url"] == f"{base_url}/fhir"


def test_every_supported_profile_is_one_validate_knows(base_url: str) -> None:
    statement = httpx.get(f"{base_url}/fhir/metadata").json()
    profiled = [r for r in statement["rest"][0]["resource"] if r.get("supportedProfile")]
    assert {r["type"] for r in profiled} >= {"PlanDefinition", "ValueSet", "ActivityDefinition", "MedicationKnowledge"}
    for entry in profiled:
        for profile in entry["supportedProfile"]:
            outcome = httpx.post(f"{base_url}/fhir/{entry['type']}/$validate", params={"profile": profile},
                                 json={"resourceType": entry["type"]}).json()
            assert not any("Unknown profile" in i.get("diagnostics", "") for i in outcome["issue"]), profile


def test_metadata_is_public_and_names_the_public_base(live: Any) -> None:
    clients = (TrustedClient(iss="https://ehr.example.org", jwks={"keys": []}),)
    with live(trusted_clients=clients, public_base_url="https://cds.example.org/levo") as url:
        assert httpx.post(f"{url}/fhir/$validate", json={"resourceType": "Patient"}).status_code == 401
        statement = httpx.get(f"{url}/fhir/metadata").json()
    assert statement["implementation"]["url"] == "https://cds.example.org/levo/fhir"
    assert "JWT" in statement["rest"][0]["security"]["description"]
