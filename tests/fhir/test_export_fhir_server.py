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


# Medplum's router takes at most 50 updates in one transaction (a limit of that server, not of
# FHIR); a larger bundle is sent as consecutive transactions of its entries, in order.
MEDPLUM_MAX_UPDATES = 50


def _post(server, bundle):
    return httpx.post(server.base_url, json=bundle, headers=FHIR_JSON, timeout=120.0)


def _load(server, bundle):
    """The transaction's entries, in parts the server takes; their responses' statuses."""
    statuses = []
    entries = bundle["entry"]
    for start in range(0, len(entries), MEDPLUM_MAX_UPDATES):
        part = {**bundle, "entry": entries[start:start + MEDPLUM_MAX_UPDATES]}
        response = _post(server, part)
        assert response.status_code == 200, response.text[:3000]
        body = response.json()
        assert body["resourceType"] == "Bundle" and body["type"] == "transaction-response"
        statuses += [str(entry["response"]["status"]) for entry in body["entry"]]
    return statuses


def test_transaction_is_accepted_and_reads_back(fhir_server):
    k = knowledge()
    bundle = build_bundle(k, "R4", "transaction")
    statuses = _load(fhir_server, bundle)
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


def test_the_server_holds_every_profile_and_extension_the_artifacts_claim(fhir_server):
    """Loaded into a FHIR server, the artifacts come with the definitions their claims name, so
    the server can validate them: each `meta.profile`, each extension URL, each bound ValueSet."""
    bundle = build_bundle(knowledge(), "R4", "transaction")
    _load(fhir_server, bundle)
    artifacts = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] != "StructureDefinition"]
    claimed = {p for r in artifacts for p in r.get("meta", {}).get("profile", [])}
    claimed |= {url for r in artifacts for url in _extension_urls(r) if url.startswith("http://fhir-module.org/")}
    assert len(claimed) >= 10, claimed
    for url in sorted(claimed):
        assert len(fhir_server.search_ids("StructureDefinition", {"url": url})) == 1, url
    bound = {b["valueSet"].split("|")[0] for e in bundle["entry"] if e["resource"]["resourceType"] == "StructureDefinition"
             for el in e["resource"]["snapshot"]["element"] if (b := el.get("binding")) and "fhir-module.org" in b.get("valueSet", "")}
    for url in sorted(bound):
        assert len(fhir_server.search_ids("ValueSet", {"url": url})) == 1, url


def _extension_urls(value):
    """The URLs of every extension (and nested extension) inside a JSON value."""
    if isinstance(value, list):
        return [u for v in value for u in _extension_urls(v)]
    if not isinstance(value, dict):
        return []
    found = []
    for key, item in value.items():
        if key in ("extension", "modifierExtension") and isinstance(item, list):
            # Parts of a complex extension have relative names ("summary"); definitions have URLs.
            found += [e["url"] for e in item if isinstance(e, dict) and str(e.get("url", "")).startswith("http")]
        found += _extension_urls(item)
    return found
