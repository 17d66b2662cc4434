"""The OpenAPI document says what the service does: every route, every body read by hand ($validate
included), errors as the OperationOutcomes (application/fhir+json) they are, the /monographs 404
and media types, and the hook and feedback rules (issue 11 found $validate's body and 400, the
monographs 404 and the rules missing)."""

from __future__ import annotations

from typing import Any

import httpx

OUTCOME = {"application/fhir+json": {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}}


def document(base_url: str) -> dict[str, Any]:
    response = httpx.get(f"{base_url}/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_every_route_is_documented(base_url: str) -> None:
    paths = document(base_url)["paths"]
    assert set(paths) >= {"/cds-services", "/cds-services/{service_id}", "/cds-services/{service_id}/feedback",
                          "/fhir/$validate", "/fhir/{resource_type}/$validate", "/monographs/{name}",
                          "/healthz", "/readyz", "/metrics"}
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)


def test_errors_are_documented_as_the_outcomes_served(base_url: str) -> None:
    doc = document(base_url)
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400 and path != "/readyz":
                    assert response["content"] == OUTCOME, (method, path, status, response)
                    assert response["description"], (method, path, status)


def test_validate_documents_its_body_parameters_and_limits(base_url: str) -> None:
    for path in ("/fhir/$validate", "/fhir/{resource_type}/$validate"):
        operation = document(base_url)["paths"][path]["post"]
        body = operation["requestBody"]
        assert body["required"] and {"application/fhir+json", "application/json"} <= set(body["content"])
        assert body["content"]["application/fhir+json"]["schema"]["required"] == ["resourceType"]
        assert {p["name"] for p in operation["parameters"]} >= {"fhirVersion", "profile"}
        responses = operation["responses"]
        assert responses["200"]["content"] == OUTCOME
        assert {"400", "401", "413", "503"} <= set(responses)
        assert "too-costly" in responses["413"]["description"] and "Retry-After" in responses["503"]["description"]


def test_monographs_document_html_and_404(base_url: str) -> None:
    responses = document(base_url)["paths"]["/monographs/{name}"]["get"]["responses"]
    assert set(responses["200"]["content"]) == {"text/html"}
    assert responses["404"]["content"] == OUTCOME and "monograph" in responses["404"]["description"]
    # As served:
    missing = httpx.get(f"{base_url}/monographs/no-such-monograph")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/fhir+json")


def test_hook_and_feedback_rules_are_described(base_url: str) -> None:
    paths = document(base_url)["paths"]
    call = paths["/cds-services/{service_id}"]["post"]
    assert all(word in call["description"] for word in ("hook", "prefetch", "412", "allow-list", "FHIR ids", "signed"))
    assert {"400", "404", "412", "413", "415", "503"} <= set(call["responses"])
    feedback = paths["/cds-services/{service_id}/feedback"]["post"]
    assert all(word in feedback["description"] for word in ("issued", "Idempotent", "503"))
    assert feedback["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/FeedbackRequest")
    schemas = document(base_url)["components"]["schemas"]
    assert "alreadyStored" in schemas["FeedbackResponse"]["properties"]
