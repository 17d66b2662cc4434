"""The R4 transaction bundle is accepted by a real FHIR server (Medplum's FHIR router on loopback).

The `fhir_server` fixture fails the test when the server cannot start: a missing server is a broken
environment, never a reason to skip.
"""

from __future__ import annotations

import copy

import httpx
from fhir_checks import knowledge

from fhir_module.fhir.bundle import build_bundle

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def _post(server, bundle):
    return httpx.post(server.base_url, json=bundle, headers=FHIR_JSON, timeout=120.0)


def test_transaction_is_accepted_and_reads_back(fhir_server):
    k = knowledge()
    bundle = build_bundle(k, "R4", "transaction")
    response = _post(fhir_server, bundle)
    assert response.status_code == 200, response.text[:3000]
    body = response.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "transaction-response"
    statuses = [str(entry["response"]["status"]) for entry in body["entry"]]
    assert len(statuses) == len(bundle["entry"])
    assert all(status.split()[0] in ("200", "201") for status in statuses), statuses

    sent = {(e["resource"]["resourceType"], e["resource"]["id"]): e["resource"] for e in bundle["entry"]}
    for resource_type in ("PlanDefinition", "ValueSet", "MedicationKnowledge", "Library"):
        resource_id = next(rid for rtype, rid in sent if rtype == resource_type)
        stored = fhir_server.get(f"{resource_type}/{resource_id}")
        original = sent[(resource_type, resource_id)]
        assert stored["id"] == resource_id
        for key in ("url", "status", "code", "compose", "action", "relatedArtifact"):
            assert stored.get(key) == original.get(key), f"{resource_type}/{resource_id}.{key} changed on the server"

    # Canonical and code searches find the artifacts, as an EHR would look them up.
    plan = next(r for (t, _), r in sent.items() if t == "PlanDefinition")
    assert fhir_server.search_ids("PlanDefinition", {"url": plan["url"]}) == [plan["id"]]
    product = k.products[0]
    found = fhir_server.search_ids("MedicationKnowledge", {"code": product.rxnorm})
    assert found == [f"{k.module['id']}-{product.rxnorm}"]


def test_server_refuses_an_invalid_resource(fhir_server):
    """The acceptance above means something: the same server rejects a bundle with an unknown element."""
    bundle = copy.deepcopy(build_bundle(knowledge(), "R4", "transaction"))
    entry = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationKnowledge")
    entry["resource"]["indicationGuideline"] = [{"indication": [{"text": "x"}]}]  # R5 only, not R4
    entry["resource"]["id"] = "not-stored"
    entry["request"]["url"] = "MedicationKnowledge/not-stored"
    response = _post(fhir_server, bundle)
    assert response.status_code >= 400, response.text[:2000]
    assert "indicationGuideline" in response.text
