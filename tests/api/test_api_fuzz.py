"""Schemathesis against the live service's own /openapi.json: generated requests (valid and
invalid per the documented schemas) never get a 5xx, and every error is an OperationOutcome."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from fhir_module.api import create_app
from fhir_module.config import Settings
from tests.api.helpers import make_engine, serve_app


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    engine = make_engine()
    db = Path(tmp_path_factory.mktemp("fuzz")) / "feedback.sqlite3"
    app = create_app(Settings(database_url=f"sqlite:///{db}"), engine)
    with serve_app(app) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        # Aim the generated calls at the real services (an unknown id would stop at 404).
        ids = [s["id"] for s in engine.services()]
        for path in ("/cds-services/{service_id}", "/cds-services/{service_id}/feedback"):
            for parameter in schema.raw_schema["paths"][path]["post"]["parameters"]:
                if parameter["name"] == "service_id":
                    parameter["schema"] = {"type": "string", "enum": ids}
        yield schema


def check(case: Any) -> None:
    response = case.call(timeout=30)
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:500]}"
    if response.status_code >= 400:
        body = response.json()
        assert body["resourceType"] == "OperationOutcome" and body["issue"], body
        assert response.headers["content-type"][0].startswith("application/fhir+json")


def test_no_server_errors(api_schema: Any) -> None:
    # Driven by hand (not schemathesis' pytest plugin): one bounded Hypothesis run per operation.
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {(o.method.upper(), o.path) for o in operations} >= {
        ("GET", "/cds-services"), ("POST", "/cds-services/{service_id}"),
        ("POST", "/cds-services/{service_id}/feedback"), ("GET", "/healthz"),
    }
    for operation in operations:
        run = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck),
                       database=None)(given(case=operation.as_strategy())(check))
        run()
