"""Completing prefetch from the request's FHIR server: what is fetched, with which token, how
pages are followed, and what happens when data cannot be had. The FHIR servers are real HTTP
servers on loopback (a small http.server answering from a chart, and Medplum)."""

from __future__ import annotations

import asyncio
import copy
from datetime import date
from typing import Any

import httpx
import pytest

from fhir_module.api.fetch import FhirFetcher, FhirServers, FhirSource, allowed_source
from fhir_module.api.prefetch import complete_prefetch
from fhir_module.api.errors import ApiError
from tests.api.helpers import SCENARIOS, FhirJsonServer, post, scenario_request
from tests.support.scenarios import load_scenario, render_template

TOKEN = "opaque-ehr-token-123"


def authorization() -> dict[str, Any]:
    return {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300,
            "scope": "user/*.read", "subject": "fhir-module"}


def card_keys(response: httpx.Response) -> list[tuple[Any, ...]]:
    assert response.status_code == 200, response.text
    return sorted(
        ((c.get("source", {}).get("topic") or {}).get("code"), c["indicator"], c["summary"])
        for c in response.json()["cards"]
    )


def chart(server: FhirJsonServer, name: str) -> None:
    server.record = load_scenario(SCENARIOS / f"{name}.json").record


@pytest.mark.parametrize("name", ["pub-max-dose", "pub-maoi-active", "pub-clean"])
def test_fetched_prefetch_gives_the_same_cards_as_sent_prefetch(
    live: Any, discovery: dict[str, Any], fhir_json_server: FhirJsonServer, name: str
) -> None:
    chart(fhir_json_server, name)
    service_id, sent = scenario_request(name, discovery)
    _, bare = scenario_request(name, discovery, fhir_server=fhir_json_server.base, prefetch=False)
    bare["fhirAuthorization"] = authorization()
    with live(allowed_fhir_servers=(fhir_json_server.base,)) as url:
        expected = card_keys(post(f"{url}/cds-services/{service_id}", sent))
        assert fhir_json_server.requests == []  # nothing missing, nothing fetched
        assert card_keys(post(f"{url}/cds-services/{service_id}", bare)) == expected
    templates = next(s for s in discovery["services"] if s["id"] == service_id)["prefetch"]
    assert len(fhir_json_server.requests) == len(templates)
    assert all(auth == f"Bearer {TOKEN}" for _, auth in fhir_json_server.requests)
    patient_id = bare["context"]["patientId"]
    assert all(patient_id in path for path, _ in fhir_json_server.requests if "patient" in path.lower())


def test_only_missing_keys_are_fetched(live: Any, discovery: dict[str, Any], fhir_json_server: FhirJsonServer) -> None:
    chart(fhir_json_server, "pub-max-dose")
    service_id, body = scenario_request("pub-max-dose", discovery, fhir_server=fhir_json_server.base)
    templates = next(s for s in discovery["services"] if s["id"] == service_id)["prefetch"]
    with live(allowed_fhir_servers=(fhir_json_server.base,)) as url:
        expected = card_keys(post(f"{url}/cds-services/{service_id}", body))
        keys = list(templates)
        dropped, outcome, nulled = keys[0], keys[1 % len(keys)], keys[2 % len(keys)]
        partial = copy.deepcopy(body)
        del partial["prefetch"][dropped]
        partial["prefetch"][outcome] = {"resourceType": "OperationOutcome",
                                        "issue": [{"severity": "error", "code": "timeout"}]}
        partial["prefetch"][nulled] = None
        assert card_keys(post(f"{url}/cds-services/{service_id}", partial)) == expected
    fetched = {path.split("?")[0].split("/")[2] for path, _ in fhir_json_server.requests}
    wanted = {templates[k].split("?")[0].split("/")[0] for k in {dropped, outcome, nulled}}
    assert fetched == wanted
    # No token was given: none is sent.
    assert all(auth is None for _, auth in fhir_json_server.requests)


def test_search_pages_are_followed(live: Any, discovery: dict[str, Any], fhir_json_server: FhirJsonServer) -> None:
    chart(fhir_json_server, "pub-serotonergic-bleeding")
    service_id, sent = scenario_request("pub-serotonergic-bleeding", discovery)
    _, bare = scenario_request("pub-serotonergic-bleeding", discovery, fhir_server=fhir_json_server.base, prefetch=False)
    fhir_json_server.page_size = 1
    with live(allowed_fhir_servers=(fhir_json_server.base,)) as url:
        expected = card_keys(post(f"{url}/cds-services/{service_id}", sent))
        assert card_keys(post(f"{url}/cds-services/{service_id}", bare)) == expected
    assert any("__page=" in path for path, _ in fhir_json_server.requests), "no page was followed"


def test_a_paged_bundle_sent_by_the_client_is_completed(
    live: Any, discovery: dict[str, Any], fhir_json_server: FhirJsonServer
) -> None:
    chart(fhir_json_server, "pub-serotonergic-bleeding")
    service_id, sent = scenario_request("pub-serotonergic-bleeding", discovery, fhir_server=fhir_json_server.base)
    fhir_json_server.page_size = 1
    paged = copy.deepcopy(sent)
    # Replace every searchset with its first page as the server gives it (with a next link).
    for key, value in sent["prefetch"].items():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle" and len(value.get("entry", [])) > 1:
            template = next(s for s in discovery["services"] if s["id"] == service_id)["prefetch"][key]
            query = render_template(template, sent["context"], date.today())
            status, page = fhir_json_server.answer(f"/fhir/{query}")
            assert status == 200 and page.get("link")
            paged["prefetch"][key] = page
    assert paged != sent, "the scenario has no search with several entries"
    with live(allowed_fhir_servers=(fhir_json_server.base,)) as url:
        assert card_keys(post(f"{url}/cds-services/{service_id}", paged)) == card_keys(
            post(f"{url}/cds-services/{service_id}", sent))
        # The same paged bundle without a usable server cannot be completed: 412, not a guess.
        paged.pop("fhirServer")
        response = post(f"{url}/cds-services/{service_id}", paged)
        assert response.status_code == 412, response.text
        assert "first page" in response.json()["issue"][0]["diagnostics"]


def test_a_next_link_off_the_allowed_server_is_not_followed(
    live: Any, discovery: dict[str, Any], fhir_json_server: FhirJsonServer
) -> None:
    other = FhirJsonServer()
    other.start()
    try:
        chart(fhir_json_server, "pub-serotonergic-bleeding")
        chart(other, "pub-serotonergic-bleeding")
        fhir_json_server.page_size = 1
        fhir_json_server.next_link_base = other.base  # same host, other port: another origin
        service_id, bare = scenario_request("pub-serotonergic-bleeding", discovery,
                                            fhir_server=fhir_json_server.base, prefetch=False)
        bare["fhirAuthorization"] = authorization()
        with live(allowed_fhir_servers=(fhir_json_server.base, )) as url:
            response = post(f"{url}/cds-services/{service_id}", bare)
        assert response.status_code == 412, response.text
        assert "outside the allowed FHIR server" in response.text
        assert other.requests == []  # the token never left the allowed server
    finally:
        other.stop()


def test_a_server_not_on_the_allow_list_is_never_contacted(
    live: Any, discovery: dict[str, Any], fhir_json_server: FhirJsonServer
) -> None:
    chart(fhir_json_server, "pub-clean")
    service_id, bare = scenario_request("pub-clean", discovery, fhir_server=fhir_json_server.base, prefetch=False)
    bare["fhirAuthorization"] = authorization()
    with live() as url:  # nothing allowed
        response = post(f"{url}/cds-services/{service_id}", bare)
    assert response.status_code == 412
    assert "not one this service is allowed" in response.json()["issue"][0]["diagnostics"]
    assert fhir_json_server.requests == []


@pytest.mark.parametrize("status", [500, 401, 403])
def test_fetch_errors_are_412(live: Any, discovery: dict[str, Any], fhir_json_server: FhirJsonServer,
                              status: int) -> None:
    chart(fhir_json_server, "pub-clean")
    service_id, bare = scenario_request("pub-clean", discovery, fhir_server=fhir_json_server.base, prefetch=False)
    templates = next(s for s in discovery["services"] if s["id"] == service_id)["prefetch"]
    failing = templates[next(iter(templates))].split("?")[0].split("/")[0]
    fhir_json_server.fail = {failing: status}
    with live(allowed_fhir_servers=(fhir_json_server.base,)) as url:
        response = post(f"{url}/cds-services/{service_id}", bare)
    assert response.status_code == 412, response.text
    assert f"HTTP {status}" in response.text


@pytest.mark.parametrize("answer", [{"resourceType": "Observation", "id": "o"}, {"no": "type"}, ["a", "list"]])
def test_an_answer_of_the_wrong_kind_is_412(live: Any, discovery: dict[str, Any], fhir_json_server: FhirJsonServer,
                                           answer: Any) -> None:
    chart(fhir_json_server, "pub-clean")
    fhir_json_server.replace = {"Patient": answer, "MedicationRequest": answer}
    service_id, bare = scenario_request("pub-clean", discovery, fhir_server=fhir_json_server.base, prefetch=False)
    with live(allowed_fhir_servers=(fhir_json_server.base,)) as url:
        response = post(f"{url}/cds-services/{service_id}", bare)
    assert response.status_code == 412, response.text
    issues = {tuple(i["expression"]) for i in response.json()["issue"]}
    assert {("prefetch.patient",), ("prefetch.medicationRequests",)} <= issues


def test_an_answer_with_non_json_numbers_is_412(live: Any, discovery: dict[str, Any],
                                                fhir_json_server: FhirJsonServer) -> None:
    """A dose of NaN from the FHIR server is not read as a number (Python's json would)."""
    chart(fhir_json_server, "pub-clean")
    order = {"resourceType": "MedicationRequest", "id": "m", "status": "active", "intent": "order",
             "subject": {"reference": "Patient/x"},
             "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": float("nan"), "unit": "mg"}}]}]}
    fhir_json_server.replace = {"MedicationRequest": {"resourceType": "Bundle", "type": "searchset",
                                                      "entry": [{"resource": order}]}}
    service_id, bare = scenario_request("pub-clean", discovery, fhir_server=fhir_json_server.base, prefetch=False)
    with live(allowed_fhir_servers=(fhir_json_server.base,)) as url:
        response = post(f"{url}/cds-services/{service_id}", bare)
    assert response.status_code == 412, response.text
    assert "NaN is not a JSON number" in response.text


def test_a_slow_server_is_412_after_the_timeout(live: Any, discovery: dict[str, Any],
                                                fhir_json_server: FhirJsonServer) -> None:
    chart(fhir_json_server, "pub-clean")
    fhir_json_server.delay = 2.0
    service_id, bare = scenario_request("pub-clean", discovery, fhir_server=fhir_json_server.base, prefetch=False)
    with live(allowed_fhir_servers=(fhir_json_server.base,), fetch_timeout=0.3) as url:
        response = post(f"{url}/cds-services/{service_id}", bare)
    assert response.status_code == 412
    assert "did not answer in time" in response.text


def test_a_read_that_finds_nothing_is_null_and_a_null_without_server_is_kept(
    fhir_json_server: FhirJsonServer,
) -> None:
    fhir_json_server.record = []
    templates = {"patient": "Patient/{{context.patientId}}", "meds": "MedicationRequest?patient={{context.patientId}}"}

    async def run(source: FhirSource | None = None, **kwargs: Any) -> dict[str, Any]:
        servers = FhirServers((fhir_json_server.base,), timeout=5)
        try:
            fetcher = FhirFetcher(servers.lane(source), source, 5, 5) if source else None
            return await complete_prefetch(templates=templates, context={"patientId": "p-1.x"},
                                           fetcher=fetcher, **kwargs)
        finally:
            await servers.aclose()

    source = FhirSource(fhir_json_server.base, None)
    result = asyncio.run(run(source, sent={}, missing=["patient", "meds"], fhir_server=fhir_json_server.base))
    assert result["patient"] is None
    assert result["meds"]["resourceType"] == "Bundle" and result["meds"]["total"] == 0
    paths = sorted(p for p, _ in fhir_json_server.requests)
    assert paths == ["/fhir/MedicationRequest?patient=p-1.x", "/fhir/Patient/p-1.x"]

    kept = asyncio.run(run(sent={"patient": None, "meds": {"resourceType": "Bundle", "type": "searchset"}},
                           missing=["patient"], fhir_server=None))
    assert kept["patient"] is None and kept["meds"]["resourceType"] == "Bundle"

    with pytest.raises(ApiError) as failure:
        asyncio.run(run(sent={}, missing=["patient", "meds"], fhir_server=None))
    assert failure.value.status == 412
    assert [i["expression"] for i in failure.value.issues] == [["prefetch.meds"], ["prefetch.patient"]]


def test_allowed_source_matches_normalised_base_urls() -> None:
    allowed = ("https://ehr.example.org/fhir", "http://127.0.0.1:8080/r4")
    assert allowed_source("https://EHR.example.org/fhir/", "t", allowed) == FhirSource("https://ehr.example.org/fhir", "t")
    assert allowed_source("https://ehr.example.org/fhir/other", "t", allowed) is None
    assert allowed_source("http://ehr.example.org/fhir", "t", allowed) is None
    assert allowed_source("https://ehr.example.org.evil.com/fhir", "t", allowed) is None
    assert allowed_source(None, "t", allowed) is None


@pytest.mark.parametrize("name", ["pub-max-dose", "pub-renal-moderate", "pub-maoi-active"])
def test_fetching_from_a_real_fhir_server(live: Any, discovery: dict[str, Any], fhir_server: Any, name: str) -> None:
    fhir_server.reset()
    scenario = load_scenario(SCENARIOS / f"{name}.json")
    fhir_server.load(scenario.record)
    service_id, sent = scenario_request(name, discovery)
    _, bare = scenario_request(name, discovery, fhir_server=fhir_server.base_url, prefetch=False)
    bare["fhirAuthorization"] = authorization()
    with live(allowed_fhir_servers=(fhir_server.base_url,)) as url:
        assert card_keys(post(f"{url}/cds-services/{service_id}", bare)) == card_keys(
            post(f"{url}/cds-services/{service_id}", sent))
