"""The service over real HTTP: discovery, a good call, and every kind of bad request answered
with the right status and an OperationOutcome (never a 500)."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from tests.api.helpers import post, scenario_request

FHIR_JSON = "application/fhir+json"


def assert_outcome(response: httpx.Response, status: int, *, expression: str | None = None,
                   text: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"] and all(i["severity"] == "error" and i["code"] for i in body["issue"])
    if expression is not None:
        assert any(expression in e for i in body["issue"] for e in i.get("expression", [])), body
    if text is not None:
        assert any(text in i.get("diagnostics", "") for i in body["issue"]), body
    return body


def test_discovery_lists_the_engines_services(base_url: str, engine: Any) -> None:
    response = httpx.get(f"{base_url}/cds-services")
    assert response.status_code == 200
    services = response.json()["services"]
    assert services == engine.services()
    assert {s["hook"] for s in services} >= {"order-select", "order-sign"}
    for service in services:
        assert service["id"] and service["description"]


def test_health(base_url: str, engine: Any) -> None:
    body = httpx.get(f"{base_url}/healthz").json()
    assert body == {"status": "ok", "services": len(engine.services()), "auth": False, "evaluationFailures": 0}


def test_a_complete_request_gets_cards(base_url: str, discovery: dict[str, Any], engine: Any) -> None:
    service_id, body = scenario_request("pub-max-dose", discovery)
    response = post(f"{base_url}/cds-services/{service_id}", body)
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert cards, "a 160 mg/day order must give at least one card"
    expected = engine.evaluate(service_id, copy.deepcopy(body))
    assert [c["summary"] for c in cards] == [c["summary"] for c in expected["cards"]]


def test_unknown_service_is_404(base_url: str, discovery: dict[str, Any]) -> None:
    _, body = scenario_request("pub-clean", discovery)
    assert_outcome(post(f"{base_url}/cds-services/no-such-service", body), 404, text="no-such-service")
    assert_outcome(post(f"{base_url}/cds-services/no-such-service/feedback", {"feedback": []}), 404)
    assert_outcome(httpx.get(f"{base_url}/no/such/path"), 404)


def test_wrong_method_is_405(base_url: str, discovery: dict[str, Any]) -> None:
    service_id = discovery["services"][0]["id"]
    assert_outcome(httpx.get(f"{base_url}/cds-services/{service_id}"), 405)
    assert_outcome(httpx.delete(f"{base_url}/cds-services"), 405)


def test_malformed_json_is_400(base_url: str, discovery: dict[str, Any]) -> None:
    service_id = discovery["services"][0]["id"]
    url = f"{base_url}/cds-services/{service_id}"
    headers = {"Content-Type": "application/json"}
    assert_outcome(httpx.post(url, content=b'{"hook": "order-select",', headers=headers), 400,
                   text="not valid JSON")
    assert_outcome(httpx.post(url, content=b"", headers=headers), 400, text="empty")
    assert_outcome(httpx.post(url, content=b" \r\n\t ", headers=headers), 400, text="empty")
    assert_outcome(httpx.post(url, content=b"[1, 2]", headers=headers), 400, text="JSON object")
    assert_outcome(httpx.post(url, content=b"\xff\xfe{}", headers=headers), 400)
    assert_outcome(httpx.post(url, content=b"[" * 100000, headers=headers), 400)


def test_wrong_content_type_is_415(base_url: str, discovery: dict[str, Any]) -> None:
    service_id, body = scenario_request("pub-clean", discovery)
    url = f"{base_url}/cds-services/{service_id}"
    data = json.dumps(body).encode()
    assert_outcome(httpx.post(url, content=data, headers={"Content-Type": "text/plain"}), 415)
    assert_outcome(httpx.post(url, content=data, headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)
    assert_outcome(httpx.post(url, content=data), 415)  # no content type at all
    ok = httpx.post(url, content=data, headers={"Content-Type": "application/fhir+json; charset=utf-8"})
    assert ok.status_code == 200, ok.text


def test_wrong_hook_for_the_service_is_400(base_url: str, discovery: dict[str, Any]) -> None:
    service_id, body = scenario_request("pub-clean", discovery)
    other = next(s for s in discovery["services"] if s["hook"] != body["hook"])
    body["hook"] = other["hook"]
    assert_outcome(post(f"{base_url}/cds-services/{service_id}", body), 400, expression="hook")


@pytest.mark.parametrize("member", ["hook", "hookInstance", "context"])
def test_missing_required_members_are_400(base_url: str, discovery: dict[str, Any], member: str) -> None:
    service_id, body = scenario_request("pub-clean", discovery)
    del body[member]
    assert_outcome(post(f"{base_url}/cds-services/{service_id}", body), 400, expression=member)


def test_missing_required_context_is_400(base_url: str, discovery: dict[str, Any]) -> None:
    service_id, body = scenario_request("pub-clean", discovery)
    del body["context"]["draftOrders"]
    assert_outcome(post(f"{base_url}/cds-services/{service_id}", body), 400, expression="draftOrders")


def test_missing_patient_id_with_a_server_to_fetch_from_is_400(
    live: Any, discovery: dict[str, Any], fhir_json_server: Any
) -> None:
    service_id, body = scenario_request("pub-clean", discovery, fhir_server=fhir_json_server.base, prefetch=False)
    del body["context"]["patientId"]
    with live(allowed_fhir_servers=(fhir_json_server.base,)) as url:
        assert_outcome(post(f"{url}/cds-services/{service_id}", body), 400, expression="context.patientId")
    assert fhir_json_server.requests == []


@pytest.mark.parametrize(
    "change, where",
    [
        (lambda b: b.__setitem__("context", "patient-1"), "context"),
        (lambda b: b.__setitem__("prefetch", ["not", "an", "object"]), "prefetch"),
        (lambda b: b["prefetch"].__setitem__(next(iter(b["prefetch"])), "Patient/1"), "prefetch."),
        (lambda b: b["prefetch"].__setitem__(next(iter(b["prefetch"])), {"id": "no-type"}), "prefetch."),
        (lambda b: b["prefetch"].__setitem__(next(iter(b["prefetch"])), 42), "prefetch."),
        (lambda b: b.__setitem__("hook", 7), "hook"),
        (lambda b: b.__setitem__("fhirAuthorization", {"access_token": "t", "token_type": "Bearer",
                                                       "expires_in": 300, "scope": "s", "subject": "x"}), ""),
        (lambda b: b.__setitem__("fhirAuthorization", {"access_token": "t"}), "fhirAuthorization"),
    ],
)
def test_bad_member_types_are_400(base_url: str, discovery: dict[str, Any], change: Any, where: str) -> None:
    service_id, body = scenario_request("pub-clean", discovery)
    body.pop("fhirServer", None)
    change(body)
    result = assert_outcome(post(f"{base_url}/cds-services/{service_id}", body), 400)
    assert any(where in e for i in result["issue"] for e in i.get("expression", [""])), result


def test_body_over_the_limit_is_413(live: Any, discovery: dict[str, Any]) -> None:
    service_id, body = scenario_request("pub-clean", discovery)
    with live(max_body_bytes=50_000) as url:
        body["extension"] = {"org.example.padding": "x" * 60_000}
        assert_outcome(post(f"{url}/cds-services/{service_id}", body), 413)

        # Streamed without Content-Length: counted as it arrives.
        def chunks():
            data = json.dumps(body).encode()
            for i in range(0, len(data), 4096):
                yield data[i:i + 4096]

        streamed = httpx.post(f"{url}/cds-services/{service_id}", content=chunks(),
                              headers={"Content-Type": "application/json"}, timeout=30)
        assert_outcome(streamed, 413)
        # $validate too (the issue's 3.2 MB bundle: 61 s of CPU), before any validation work.
        big = {"resourceType": "Basic", "code": {"text": "x" * 60_000}}
        assert_outcome(httpx.post(f"{url}/fhir/$validate", json=big, timeout=30), 413)
        del body["extension"]
        assert post(f"{url}/cds-services/{service_id}", body).status_code == 200


def test_missing_prefetch_without_a_fhir_server_is_412(base_url: str, discovery: dict[str, Any]) -> None:
    service_id, body = scenario_request("pub-clean", discovery)
    key = next(iter(body["prefetch"]))
    del body["prefetch"][key]
    result = assert_outcome(post(f"{base_url}/cds-services/{service_id}", body), 412, expression=f"prefetch.{key}")
    assert "fhirServer" in result["issue"][0]["diagnostics"]
    body.pop("prefetch")
    assert_outcome(post(f"{base_url}/cds-services/{service_id}", body), 412)


def test_operation_outcome_in_prefetch_without_a_server_is_412(base_url: str, discovery: dict[str, Any]) -> None:
    service_id, body = scenario_request("pub-clean", discovery)
    key = next(iter(body["prefetch"]))
    body["prefetch"][key] = {"resourceType": "OperationOutcome",
                             "issue": [{"severity": "error", "code": "timeout", "diagnostics": "EHR busy"}]}
    result = assert_outcome(post(f"{base_url}/cds-services/{service_id}", body), 412, expression=f"prefetch.{key}")
    assert "EHR busy" in result["issue"][0]["diagnostics"]


def test_cors_preflight_and_headers(base_url: str, discovery: dict[str, Any]) -> None:
    service_id = discovery["services"][0]["id"]
    preflight = httpx.options(
        f"{base_url}/cds-services/{service_id}",
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    simple = httpx.get(f"{base_url}/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert simple.headers["access-control-allow-origin"] == "*"
    error = httpx.get(f"{base_url}/nope", headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert error.status_code == 404 and error.headers["access-control-allow-origin"] == "*"


def test_cors_origins_can_be_restricted(live: Any) -> None:
    with live(cors_origins=("https://ehr.example.org",)) as url:
        good = httpx.get(f"{url}/cds-services", headers={"Origin": "https://ehr.example.org"})
        assert good.headers["access-control-allow-origin"] == "https://ehr.example.org"
        bad = httpx.get(f"{url}/cds-services", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in bad.headers


def test_openapi_documents_the_wire_format(base_url: str) -> None:
    document = httpx.get(f"{base_url}/openapi.json").json()
    paths = document["paths"]
    assert set(paths) >= {"/cds-services", "/cds-services/{service_id}",
                          "/cds-services/{service_id}/feedback", "/healthz"}
    schemas = document["components"]["schemas"]
    for name in ("CdsServiceRequest", "CdsServiceResponse", "Card", "FeedbackRequest", "OperationOutcome"):
        assert name in schemas
    call = paths["/cds-services/{service_id}"]["post"]
    assert call["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/CdsServiceRequest")
    assert {"200", "400", "404", "412", "413", "415"} <= set(call["responses"])
    assert set(schemas["CdsServiceRequest"]["required"]) == {"hook", "hookInstance", "context"}
    assert document["components"]["securitySchemes"]["cdsClientJwt"]["bearerFormat"] == "JWT"
    assert call["security"] == [{"cdsClientJwt": []}, {}]  # optional: authentication is off here
    assert "security" not in paths["/healthz"]["get"]


def test_fhir_validate_is_served(base_url: str) -> None:
    good = httpx.post(f"{base_url}/fhir/$validate", json={"resourceType": "Patient", "gender": "female"})
    assert good.status_code == 200 and good.json()["resourceType"] == "OperationOutcome"
    assert not [i for i in good.json()["issue"] if i["severity"] in ("error", "fatal")]
    bad = httpx.post(f"{base_url}/fhir/$validate", json={"resourceType": "Patient", "gender": "unknown-gender"})
    assert [i for i in bad.json()["issue"] if i["severity"] in ("error", "fatal")]


@pytest.mark.parametrize("issue", ["a string", {"details": "text"}, [{"details": "text", "code": 5}], [7]])
def test_odd_operation_outcomes_in_prefetch_are_412_not_500(base_url: str, discovery: dict[str, Any],
                                                             issue: Any) -> None:
    service_id, body = scenario_request("pub-clean", discovery)
    key = next(iter(body["prefetch"]))
    body["prefetch"][key] = {"resourceType": "OperationOutcome", "issue": issue}
    assert_outcome(post(f"{base_url}/cds-services/{service_id}", body), 412, expression=f"prefetch.{key}")
