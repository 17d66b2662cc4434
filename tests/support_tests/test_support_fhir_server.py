"""The test FHIR server is a real FHIR server: transactions keep ids, searches and reads answer."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.fhir_server import (
    SERVER_DIR,
    FhirServer,
    FhirServerError,
    FhirServerUnavailable,
    ensure_node_modules,
    start_fhir_server,
)

PATIENT = {"resourceType": "Patient", "id": "sup-p1", "birthDate": "1970-05-01", "gender": "female"}
OTHER_PATIENT = {"resourceType": "Patient", "id": "sup-p2", "birthDate": "1980-01-01"}


def _med_request(rid: str, patient: str, status: str, authored: str, code: str) -> dict:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{patient}"},
        "authoredOn": authored,
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code}]},
    }


RECORD = [
    PATIENT,
    OTHER_PATIENT,
    _med_request("sup-mr-old", "sup-p1", "stopped", "2024-01-10", "111"),
    _med_request("sup-mr-new", "sup-p1", "active", "2025-03-01", "222"),
    _med_request("sup-mr-other", "sup-p2", "active", "2025-03-01", "222"),
    {
        "resourceType": "Observation",
        "id": "sup-obs",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
        "subject": {"reference": "Patient/sup-p1"},
        "effectiveDateTime": "2025-02-01",
        "valueQuantity": {"value": 1.1, "unit": "mg/dL"},
    },
]


@pytest.fixture()
def loaded(fhir_server: FhirServer) -> Iterator[FhirServer]:
    fhir_server.reset()
    fhir_server.load(RECORD)
    yield fhir_server
    fhir_server.reset()


def test_metadata_is_an_r4_capability_statement(fhir_server: FhirServer) -> None:
    statement = httpx.get(f"{fhir_server.base_url}/metadata").json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in statement["rest"][0]["resource"]}
    assert {"Patient", "MedicationRequest", "Observation"} <= types


def test_transaction_keeps_ids_and_read_returns_the_resource(loaded: FhirServer) -> None:
    patient = loaded.get("Patient/sup-p1")
    assert patient["id"] == "sup-p1"
    assert patient["birthDate"] == "1970-05-01"


def test_read_of_a_missing_resource_is_404(loaded: FhirServer) -> None:
    response = httpx.get(f"{loaded.base_url}/Patient/does-not-exist")
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("patient", ["sup-p1", "Patient/sup-p1"])
def test_search_by_patient_accepts_bare_id_and_reference(loaded: FhirServer, patient: str) -> None:
    assert sorted(loaded.search_ids("MedicationRequest", {"patient": patient})) == ["sup-mr-new", "sup-mr-old"]


def test_search_by_subject_bare_id(loaded: FhirServer) -> None:
    assert sorted(loaded.search_ids("MedicationRequest", {"subject": "sup-p2"})) == ["sup-mr-other"]


def test_search_entries_have_full_urls(loaded: FhirServer) -> None:
    bundle = loaded.get("MedicationRequest", {"patient": "sup-p1"})
    assert bundle["type"] == "searchset"
    for entry in bundle["entry"]:
        assert entry["fullUrl"] == f"{loaded.base_url}/MedicationRequest/{entry['resource']['id']}"


def test_search_token_date_sort_and_count(loaded: FhirServer) -> None:
    assert loaded.search_ids("MedicationRequest", {"patient": "sup-p1", "status": "active"}) == ["sup-mr-new"]
    assert loaded.search_ids(
        "MedicationRequest", {"patient": "sup-p1", "code": "http://www.nlm.nih.gov/research/umls/rxnorm|111"}
    ) == ["sup-mr-old"]
    assert loaded.search_ids("MedicationRequest", {"patient": "sup-p1", "authoredon": "ge2025-01-01"}) == ["sup-mr-new"]
    assert loaded.search_ids("MedicationRequest", {"patient": "sup-p1", "_sort": "authoredon"}) == ["sup-mr-old", "sup-mr-new"]
    assert loaded.search_ids("MedicationRequest", {"patient": "sup-p1", "_sort": "-authoredon", "_count": "1"}) == ["sup-mr-new"]
    assert loaded.search_ids("Observation", {"patient": "sup-p1", "code": "http://loinc.org|2160-0"}) == ["sup-obs"]


def test_unknown_search_parameter_and_type_are_refused(loaded: FhirServer) -> None:
    with pytest.raises(FhirServerError, match="400"):
        loaded.get("MedicationRequest", {"patient": "sup-p1", "no-such-param": "x"})
    with pytest.raises(FhirServerError, match="404"):
        loaded.get("NoSuchType", {"patient": "sup-p1"})


def test_reset_empties_the_server(fhir_server: FhirServer) -> None:
    fhir_server.load([PATIENT])
    assert fhir_server.search_ids("Patient", {"_id": "sup-p1"}) == ["sup-p1"]
    fhir_server.reset()
    assert fhir_server.search_ids("Patient", {"_id": "sup-p1"}) == []


def test_load_refuses_resources_without_id(fhir_server: FhirServer) -> None:
    with pytest.raises(ValueError, match="no id"):
        fhir_server.load([{"resourceType": "Patient"}])
    with pytest.raises(ValueError, match="no resourceType"):
        fhir_server.load([{"id": "x"}])


def test_load_reports_a_rejected_resource(fhir_server: FhirServer) -> None:
    with pytest.raises(FhirServerError, match="NoSuchType"):
        fhir_server.load([{"resourceType": "NoSuchType", "id": "x"}])


def test_bad_json_body_is_a_400_outcome(fhir_server: FhirServer) -> None:
    response = httpx.post(fhir_server.base_url, content=b"{not json", headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_load_refuses_an_invalid_resource(fhir_server: FhirServer) -> None:
    with pytest.raises(FhirServerError, match="birthDate"):
        fhir_server.load([{"resourceType": "Patient", "id": "bad", "birthDate": "last spring"}])
    with pytest.raises(FhirServerError, match="HTTP 404"):
        fhir_server.get("Patient/bad")


def test_post_search_with_form_body(loaded: FhirServer) -> None:
    response = httpx.post(
        f"{loaded.base_url}/MedicationRequest/_search",
        data={"patient": "sup-p1", "status": "active"},
    )
    assert response.status_code == 200, response.text
    assert [e["resource"]["id"] for e in response.json()["entry"]] == ["sup-mr-new"]


def test_npm_ci_installs_a_fresh_copy(tmp_path: Path) -> None:
    for name in ("package.json", "package-lock.json"):
        shutil.copy(SERVER_DIR / name, tmp_path / name)
    ensure_node_modules(tmp_path)
    assert (tmp_path / "node_modules" / "@medplum" / "fhir-router" / "package.json").exists()


def test_missing_node_fails_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(FhirServerUnavailable, match="'node' is not on PATH"):
        start_fhir_server()
