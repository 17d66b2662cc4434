"""Only the data the checked orders' rules read is asked for.

Requests shaped like the CDS Hooks documentation and the Da Vinci CRD test kit (an MRI, a diet, a
drug no module knows) carry none of the prefetch this service's discovery asks for: they get 200
and no cards, and nothing is fetched even when a FHIR server is allowed. A levomilnacipran order
without its data still gets 412, and an MAOI order needs only the medication lists.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import FhirJsonServer, post, scenario_request, service_for
from tests.engine.test_cards_cli import _cards

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "unrelated"
UNRELATED = sorted(FIXTURES.glob("*.json"))


def _request(path: Path, fhir_server: str | None = None) -> dict[str, Any]:
    body = json.loads(path.read_text(encoding="utf-8"))
    if fhir_server is not None:
        body["fhirServer"] = fhir_server
    return body


def _levomilnacipran_order(discovery: dict[str, Any], hook: str) -> dict[str, Any]:
    """The draft order of a public levomilnacipran scenario (a 160 mg/day order)."""
    _, body = scenario_request("pub-max-dose", discovery)
    return copy.deepcopy(body["context"]["draftOrders"]["entry"][0]["resource"])


def test_the_fixtures_are_there() -> None:
    assert len(UNRELATED) == 3


@pytest.mark.parametrize("path", UNRELATED, ids=lambda p: p.stem)
def test_unrelated_orders_get_200_and_no_cards_without_their_prefetch(
    base_url: str, discovery: dict[str, Any], path: Path
) -> None:
    body = _request(path)
    service = service_for(discovery, body["hook"])
    assert not set(service["prefetch"]) <= set(body.get("prefetch") or {}), "the request must lack our prefetch"
    response = post(f"{base_url}/cds-services/{service['id']}", body)
    assert response.status_code == 200, response.text
    assert response.json() == {"cards": []}


@pytest.mark.parametrize("path", UNRELATED, ids=lambda p: p.stem)
def test_unrelated_orders_fetch_nothing_from_an_allowed_server(
    live: Any, discovery: dict[str, Any], fhir_json_server: FhirJsonServer, path: Path
) -> None:
    body = _request(path, fhir_json_server.base)
    service = service_for(discovery, body["hook"])
    with live(allowed_fhir_servers=(fhir_json_server.base,)) as url:
        response = post(f"{url}/cds-services/{service['id']}", body)
    assert response.status_code == 200, response.text
    assert response.json() == {"cards": []}
    # A Medication the order names but the request lacks is read to know the drug; nothing else.
    assert all(p.startswith("/fhir/Medication/") for p, _ in fhir_json_server.requests), fhir_json_server.requests


def test_the_crd_order_naming_a_medication_reads_only_that_medication(
    live: Any, discovery: dict[str, Any], fhir_json_server: FhirJsonServer
) -> None:
    body = _request(FIXTURES / "crd-order-sign-mixed.json", fhir_json_server.base)
    fhir_json_server.record = [{"resourceType": "Medication", "id": "med-medref", "code": {"text": "Amoxicillin oral suspension"}}]
    service = service_for(discovery, body["hook"])
    with live(allowed_fhir_servers=(fhir_json_server.base,)) as url:
        response = post(f"{url}/cds-services/{service['id']}", body)
    assert response.status_code == 200 and response.json() == {"cards": []}, response.text
    assert [p for p, _ in fhir_json_server.requests] == ["/fhir/Medication/med-medref"]


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_a_levomilnacipran_order_among_them_still_needs_its_data(
    base_url: str, discovery: dict[str, Any], hook: str
) -> None:
    name = "cds-hooks-order-select.json" if hook == "order-select" else "crd-order-sign-mixed.json"
    body = _request(FIXTURES / name)
    order = _levomilnacipran_order(discovery, hook)
    order["subject"] = {"reference": f"Patient/{body['context']['patientId']}"}
    body["context"]["draftOrders"]["entry"].append({"resource": order})
    if hook == "order-select":
        body["context"]["selections"].append(f"MedicationRequest/{order['id']}")
    service = service_for(discovery, hook)
    response = post(f"{base_url}/cds-services/{service['id']}", body)
    assert response.status_code == 412, response.text
    missing = {e for issue in response.json()["issue"] for e in issue["expression"]}
    assert {f"prefetch.{key}" for key in service["prefetch"]} - {f"prefetch.{k}" for k in body.get("prefetch", {})} <= missing


def test_a_levomilnacipran_order_drafted_but_not_selected_needs_no_data(base_url: str, discovery: dict[str, Any]) -> None:
    """order-select checks the selections only; a drafted levomilnacipran order counts for their
    rules, and none of the selected orders has any."""
    body = _request(FIXTURES / "cds-hooks-order-select.json")
    order = _levomilnacipran_order(discovery, "order-select")
    body["context"]["draftOrders"]["entry"].append({"resource": order})
    service = service_for(discovery, "order-select")
    response = post(f"{base_url}/cds-services/{service['id']}", body)
    assert response.status_code == 200 and response.json() == {"cards": []}, response.text


def test_an_order_whose_drug_cannot_be_known_needs_the_data(base_url: str, discovery: dict[str, Any]) -> None:
    """A Medication reference the request does not hold, with no name to go by, could be any drug."""
    body = _request(FIXTURES / "crd-order-sign-mixed.json")
    for entry in body["context"]["draftOrders"]["entry"]:
        entry["resource"].get("medicationReference", {}).pop("display", None)
    service = service_for(discovery, "order-sign")
    response = post(f"{base_url}/cds-services/{service['id']}", body)
    assert response.status_code == 412, response.text


def test_an_maoi_order_needs_only_the_medication_lists(base_url: str, discovery: dict[str, Any]) -> None:
    service_id, body = scenario_request("pub-maoi-reverse", discovery)
    kept = {"medicationRequests", "medicationStatements"}
    body["prefetch"] = {k: v for k, v in body["prefetch"].items() if k in kept}
    response = post(f"{base_url}/cds-services/{service_id}", body)
    assert response.status_code == 200, response.text
    assert [c["source"]["topic"]["code"] for c in response.json()["cards"]] == ["maoi-washout"]
    del body["prefetch"]["medicationStatements"]
    refused = post(f"{base_url}/cds-services/{service_id}", body)
    assert refused.status_code == 412
    assert [i["expression"] for i in refused.json()["issue"]] == [["prefetch.medicationStatements"]]


def test_bad_context_is_still_400_before_any_data_question(base_url: str, discovery: dict[str, Any]) -> None:
    body = _request(FIXTURES / "cds-hooks-order-select.json")
    body["context"]["selections"] = ["ServiceRequest/not-drafted"]
    service = service_for(discovery, "order-select")
    response = post(f"{base_url}/cds-services/{service['id']}", body)
    assert response.status_code == 400 and "not-drafted" in response.text


def test_the_maoi_kind_declares_only_what_it_reads(engine: Any) -> None:
    for plan in engine.kb.plan_definitions:  # every built-in module: its drug's orders, and MAOI orders
        inputs = {action["id"]: [i["type"] for i in action["input"]] for action in plan["action"]}
        drug_kind = plan["id"].removesuffix("-order-select").removesuffix("-order-sign") + "-order"
        assert inputs["maoi-order"] == ["MedicationRequest", "MedicationStatement"]
        assert set(inputs[drug_kind]) == {
            "Patient", "MedicationRequest", "MedicationStatement", "Condition", "AllergyIntolerance", "Observation"}


@pytest.mark.parametrize("path", UNRELATED, ids=lambda p: p.stem)
def test_the_cards_command_answers_unrelated_orders_offline(path: Path) -> None:
    result = _cards(path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"cards": []}


def test_discovery_still_lists_every_key(base_url: str, engine: Any) -> None:
    services = httpx.get(f"{base_url}/cds-services").json()["services"]
    for service in services:
        assert list(service["prefetch"]) == [
            "patient", "medicationRequests", "medicationStatements", "conditions", "allergyIntolerances", "observations"]
