"""Request bodies over real HTTP: input Python's `json` would read silently (NaN, 1e400, huge
integers, lone surrogates, deep nesting) is a 400 OperationOutcome on every JSON endpoint, never a
500 or a silent answer; a client that leaves mid-body is not logged as a server error."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.helpers import FhirJsonServer, scenario_request
from tests.api.test_api_prefetch_fetch import chart

HEADERS = {"Content-Type": "application/json"}
FEEDBACK_ITEM = {"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z",
                 "overrideReason": {"userComment": "PLACE"}}

# (what is wrong, the JSON text put in place of a string value "PLACE")
BAD_VALUES = [
    ("NaN", "NaN"),
    ("Infinity", "Infinity"),
    ("-Infinity", "-Infinity"),
    ("a number that overflows to infinity", "1e400"),
    ("a 5,000-digit integer", "9" * 5000),
    ("an integer beyond 64 bits", "18446744073709551616"),
    ("a lone high surrogate", '"\\ud800"'),
    ("a lone low surrogate", '"x\\udc00"'),
    ("nesting 10,000 deep", "[" * 10000 + "]" * 10000),
    ("nesting 100 deep", "[" * 100 + "]" * 100),
    # A large body's depth is checked by orjson's limit (strictjson._read_within), a small one's by a walk.
    ("nesting 66 deep in a body over 32 KiB", '["' + "x" * 40000 + '", ' + "[" * 64 + "]" * 64 + "]"),
]


def bodies(discovery: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Endpoint path -> a valid body with a "PLACE" string to replace."""
    service_id, request = scenario_request("pub-clean", discovery)
    request["hookInstance"] = "PLACE"
    return {
        f"/cds-services/{service_id}": json.dumps(request),
        f"/cds-services/{service_id}/feedback": json.dumps({"feedback": [FEEDBACK_ITEM]}),
        "/fhir/$validate": json.dumps({"resourceType": "Patient", "id": "PLACE"}),
        "/fhir/Patient/$validate": json.dumps({"resourceType": "Patient", "name": [{"text": "PLACE"}]}),
    }


@pytest.mark.parametrize("what, value", BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_non_json_values_are_400_on_every_endpoint(base_url: str, discovery: dict[str, Any],
                                                  what: str, value: str) -> None:
    with httpx.Client(timeout=30) as client:
        for path, body in bodies(discovery).items():
            text = body.replace('"PLACE"', value, 1)
            response = client.post(base_url + path, content=text.encode(), headers=HEADERS)
            assert response.status_code == 400, f"{path} with {what}: {response.status_code} {response.text[:200]}"
            assert response.headers["content-type"].startswith("application/fhir+json")
            outcome = response.json()
            assert outcome["resourceType"] == "OperationOutcome"
            assert "not valid JSON" in outcome["issue"][0]["diagnostics"], outcome


def test_the_valid_bodies_are_accepted(base_url: str, discovery: dict[str, Any]) -> None:
    """The same bodies with an ordinary string are answered (so the 400s above are about the value)."""
    with httpx.Client(timeout=30) as client:
        for path, body in bodies(discovery).items():
            text = body.replace('"PLACE"', '"an-ordinary-string"', 1)
            response = client.post(base_url + path, content=text.encode(), headers=HEADERS)
            if path.endswith("/feedback"):
                assert response.status_code < 500, response.text
            else:
                assert response.status_code == 200, f"{path}: {response.text[:300]}"


@pytest.fixture
def error_records() -> Iterator[list[logging.LogRecord]]:
    """Records at WARNING and above from uvicorn and the service while the test runs."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep(level=logging.WARNING)
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "fhir_module")]
    for logger in loggers:
        logger.addHandler(keep)
    try:
        yield records
    finally:
        for logger in loggers:
            logger.removeHandler(keep)


def test_a_client_leaving_mid_body_is_not_a_server_error(
    base_url: str, discovery: dict[str, Any], error_records: list[logging.LogRecord]
) -> None:
    service_id = discovery["services"][0]["id"]
    address = urlsplit(base_url)
    for path in (f"/cds-services/{service_id}", f"/cds-services/{service_id}/feedback", "/fhir/$validate"):
        with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: 5000\r\n\r\n".encode() + b'{"hook": "order-select", "context": {'
            )
            time.sleep(0.3)  # the route is now waiting for the rest of the body
    time.sleep(0.5)
    assert httpx.get(f"{base_url}/healthz").status_code == 200
    assert [r.getMessage() for r in error_records if r.levelno >= logging.ERROR] == []
    assert not any(r.exc_info for r in error_records)


def test_a_lone_surrogate_where_it_would_reach_the_answer_is_400(base_url: str, discovery: dict[str, Any]) -> None:
    """Issue 11's three places, each once a 500 (the answer could not be encoded): the patientId, the
    diagnostics of an OperationOutcome sent as a prefetch (quoted in the 412) and a $validate id."""
    service_id, request = scenario_request("pub-clean", discovery)
    in_patient_id = json.dumps({**request, "context": {**request["context"], "patientId": "PLACE"}})
    key = next(iter(request["prefetch"]))
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception", "diagnostics": "PLACE"}]}
    in_outcome = json.dumps({**request, "prefetch": {**request["prefetch"], key: outcome}})
    in_validate_id = json.dumps({"resourceType": "Patient", "id": "PLACE"})
    with httpx.Client(timeout=30) as client:
        for path, body in [(f"/cds-services/{service_id}", in_patient_id), (f"/cds-services/{service_id}", in_outcome),
                           ("/fhir/$validate", in_validate_id)]:
            response = client.post(base_url + path, content=body.replace('"PLACE"', '"a\\ud800b"').encode(), headers=HEADERS)
            assert response.status_code == 400, f"{path}: {response.status_code} {response.text[:200]}"
            assert "not valid JSON" in response.json()["issue"][0]["diagnostics"]


def test_a_lone_surrogate_in_a_fhir_servers_answer_is_never_a_500(live: Any, discovery: dict[str, Any],
                                                                   fhir_json_server: FhirJsonServer) -> None:
    """The same text from the allowed FHIR server (an OperationOutcome's diagnostics, a Patient's id):
    the data cannot be had, said as a 412, and the answer holds no unencodable text."""
    chart(fhir_json_server, "pub-clean")
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception",
                                                              "diagnostics": "a\ud800b"}]}
    fhir_json_server.replace = {"Patient": {"resourceType": "Patient", "id": "a\ud800b"}, "Condition": outcome}
    fhir_json_server.fail = {}
    service_id, bare = scenario_request("pub-clean", discovery, fhir_server=fhir_json_server.base, prefetch=False)
    with live(allowed_fhir_servers=(fhir_json_server.base,)) as url:
        response = httpx.post(f"{url}/cds-services/{service_id}", json=bare, timeout=30)
    assert response.status_code == 412, response.text
    assert "not valid JSON" in response.text and "\\ud800" not in response.text
