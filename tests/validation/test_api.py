"""`POST /fhir/$validate` and `POST /fhir/{type}/$validate` on a FastAPI app that includes the router."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fhir_module.fhir import canonical
from fhir_module.validation.api import router

CORPUS = Path(__file__).parent / "corpus"
FHIR_JSON = {"content-type": "application/fhir+json"}


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    app.include_router(router)
    return TestClient(app)


def _body(kind: str, name: str) -> bytes:
    return (CORPUS / kind / f"{name}.json").read_bytes()


def test_valid_resource_gives_no_issues(client: TestClient) -> None:
    response = client.post("/fhir/$validate", content=_body("valid", "plandefinition"), headers=FHIR_JSON)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    issues = response.json()["issue"]
    assert not [i for i in issues if i["severity"] in ("error", "fatal")]


def test_errors_are_200_with_the_outcome(client: TestClient) -> None:
    response = client.post("/fhir/$validate", content=_body("invalid", "bundle-entry-invalid-resource"), headers=FHIR_JSON)
    assert response.status_code == 200
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert ["Bundle.entry[1].resource.action[0].action[0]"] in [i.get("expression") for i in outcome["issue"]]


def test_parameters_with_resource_and_profile(client: TestClient) -> None:
    params = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": {"resourceType": "PlanDefinition", "id": "p", "status": "draft"}},
            {"name": "profile", "valueUri": canonical.PROFILE_PLAN_DEFINITION},
        ],
    }
    outcome = client.post("/fhir/PlanDefinition/$validate", json=params).json()
    assert ["PlanDefinition.url"] in [i.get("expression") for i in outcome["issue"]]


def test_type_in_path_must_match(client: TestClient) -> None:
    outcome = client.post("/fhir/Library/$validate", content=_body("valid", "plandefinition"), headers=FHIR_JSON).json()
    assert outcome["issue"][0]["severity"] == "error"
    assert "Expected a Library" in outcome["issue"][0]["diagnostics"]


def test_unparseable_json_is_400_with_an_outcome(client: TestClient) -> None:
    response = client.post("/fhir/$validate", content=b'{"resourceType": ', headers=FHIR_JSON)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_json_that_is_not_a_resource_is_a_fatal_issue(client: TestClient) -> None:
    response = client.post("/fhir/$validate", content=json.dumps([1, 2]), headers=FHIR_JSON)
    assert response.status_code == 200
    assert response.json()["issue"][0]["severity"] == "fatal"


@pytest.mark.parametrize("content_type", ["application/fhir+xml", "application/x-www-form-urlencoded", None])
def test_a_body_not_declared_as_fhir_json_is_415(client: TestClient, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/fhir/$validate", content=_body("valid", "plandefinition"), headers=headers)
    assert response.status_code == 415
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "application/json" in outcome["issue"][0]["diagnostics"]
