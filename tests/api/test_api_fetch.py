"""What the service fetches, and from where: client values never shape a URL beyond an encoded
value, ids must be FHIR ids, a `next` link cannot lead off the allowed base path, and a token a
FHIR server echoes is neither logged nor answered back."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fhir_module.api.fetch import FhirSource, is_fhir_id, read_path, scrub, within
from tests.api.helpers import FhirJsonServer, post, scenario_request
from tests.api.test_api_prefetch_fetch import authorization, chart

BASE = "https://ehr.example.org/fhir"
SOURCE = FhirSource(BASE, "tok-123")


@pytest.mark.parametrize("value, expected", [
    ("abc-1.2", True), ("A" * 64, True), ("...x", True),
    (".", False), ("..", False), ("...", False), ("", False), ("a b", False), ("a/b", False),
    ("x?_count=1", False), ("A" * 65, False), ("é", False), (None, False), (12, False),
])
def test_is_fhir_id(value: Any, expected: bool) -> None:
    assert is_fhir_id(value) is expected


@pytest.mark.parametrize("url, expected", [
    (f"{BASE}/Patient?x=1", True),
    (f"{BASE}", True),
    ("https://EHR.example.org/fhir/Patient/1", True),
    (f"{BASE}/../redir/Patient", False),  # once followed: httpx resolves the dots
    (f"{BASE}/%2e%2e/redir", False),
    (f"{BASE}/Patient/%2E", False),
    (f"{BASE}/./Patient", False),
    (f"{BASE}\\..\\x", False),
    ("https://ehr.example.org/fhirx/Patient", False),
    ("https://ehr.example.org/other", False),
    ("http://ehr.example.org/fhir/Patient", False),
    ("https://ehr.example.org:444/fhir/Patient", False),
    ("https://user@ehr.example.org/fhir/Patient", False),
])
def test_within(url: str, expected: bool) -> None:
    assert within(SOURCE, url) is expected


@pytest.mark.parametrize("reference, expected", [
    ("Medication/m1", "Medication/m1"),
    ("Medication/m1/_history/3", "Medication/m1"),
    (f"{BASE}/Medication/m1", "Medication/m1"),
    ("https://EHR.example.org/fhir/Medication/m1", "Medication/m1"),
    ("https://ehr.example.org/FHIR/Medication/m1", None),  # paths are case-sensitive
    ("Medication/x?_count=100000", None),
    ("Medication/..", None),
    ("Medication/.", None),
    ("Medication/", None),
    ("Medication/a/b", None),
    ("Substance/m1", None),
    ("https://elsewhere.example.org/fhir/Medication/m1", None),
    (f"{BASE}/sub/Medication/m1", None),
    (f"{BASE}/../Medication/m1", None),
])
def test_read_path(reference: str, expected: str | None) -> None:
    assert read_path(SOURCE, reference, "Medication") == expected


def test_scrub() -> None:
    assert scrub("invalid token tok-123 (Bearer tok-123)", SOURCE) == "invalid token [REDACTED] (Bearer [REDACTED])"
    assert scrub("key=eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.c2ln", FhirSource(BASE, None)) == "key=[REDACTED]"


def with_medication_reference(body: dict[str, Any], reference: str) -> dict[str, Any]:
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft.pop("medicationCodeableConcept", None)
    draft["medicationReference"] = {"reference": reference}
    return body


@pytest.mark.parametrize("reference", [
    "Medication/x?_count=100000", "Medication/..", "Medication/.", "Medication/%2e%2e",
    "Medication/x#frag", "{base}/../Medication/x",
])
def test_a_medication_reference_never_shapes_the_url(live: Any, discovery: dict[str, Any],
                                                    fhir_json_server: FhirJsonServer, reference: str) -> None:
    chart(fhir_json_server, "pub-clean")
    service_id, body = scenario_request("pub-clean", discovery, fhir_server=fhir_json_server.base)
    body["fhirAuthorization"] = authorization()
    with_medication_reference(body, reference.format(base=fhir_json_server.base))
    with live(allowed_fhir_servers=(fhir_json_server.base,)) as url:
        response = post(f"{url}/cds-services/{service_id}", body)
    assert response.status_code < 500, response.text
    # The prefetch is complete; the only candidate fetch was the Medication, and it is not a read of one.
    assert fhir_json_server.requests == []


def test_a_good_medication_reference_is_read(live: Any, discovery: dict[str, Any],
                                            fhir_json_server: FhirJsonServer) -> None:
    chart(fhir_json_server, "pub-clean")
    service_id, body = scenario_request("pub-clean", discovery, fhir_server=fhir_json_server.base)
    with_medication_reference(body, "Medication/m-1")
    with live(allowed_fhir_servers=(fhir_json_server.base,)) as url:
        assert post(f"{url}/cds-services/{service_id}", body).status_code < 500
    assert {path for path, _ in fhir_json_server.requests} == {"/fhir/Medication/m-1"}


@pytest.mark.parametrize("patient_id", [".", "..", "p 1", "a/b", "x?name=smith"])
def test_a_patient_id_that_is_not_a_fhir_id_is_400_and_nothing_is_fetched(
    live: Any, discovery: dict[str, Any], fhir_json_server: FhirJsonServer, patient_id: str
) -> None:
    chart(fhir_json_server, "pub-clean")
    service_id, body = scenario_request("pub-clean", discovery, fhir_server=fhir_json_server.base, prefetch=False)
    body["fhirAuthorization"] = authorization()
    body["context"]["patientId"] = patient_id
    for entry in body["context"]["draftOrders"]["entry"]:
        entry["resource"]["subject"] = {"reference": f"Patient/{patient_id}"}
    with live(allowed_fhir_servers=(fhir_json_server.base,)) as url:
        response = post(f"{url}/cds-services/{service_id}", body)
    assert response.status_code == 400, response.text
    assert "not a FHIR id" in response.text
    assert any("context.patientId" in e for i in response.json()["issue"] for e in i.get("expression", []))
    assert fhir_json_server.requests == []


@pytest.mark.parametrize("escape", ["/..", "/%2e%2e", "/%2E%2E"])
def test_a_next_link_with_dot_segments_is_not_followed(live: Any, discovery: dict[str, Any],
                                                      fhir_json_server: FhirJsonServer, escape: str) -> None:
    chart(fhir_json_server, "pub-serotonergic-bleeding")
    fhir_json_server.page_size = 1
    fhir_json_server.next_link_base = f"{fhir_json_server.base}{escape}/redir"
    service_id, bare = scenario_request("pub-serotonergic-bleeding", discovery,
                                        fhir_server=fhir_json_server.base, prefetch=False)
    bare["fhirAuthorization"] = authorization()
    with live(allowed_fhir_servers=(fhir_json_server.base,)) as url:
        response = post(f"{url}/cds-services/{service_id}", bare)
    assert response.status_code == 412, response.text
    assert "outside the allowed FHIR server" in response.text
    assert all(path.startswith("/fhir/") and "redir" not in path for path, _ in fhir_json_server.requests)


@pytest.fixture
def service_log() -> Iterator[list[str]]:
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    keep = Keep()
    logger = logging.getLogger("fhir_module")
    logger.addHandler(keep)
    try:
        yield lines
    finally:
        logger.removeHandler(keep)


@pytest.mark.parametrize("status", [401, 500])
def test_a_token_echoed_by_the_fhir_server_is_not_logged_or_answered(
    live: Any, discovery: dict[str, Any], fhir_json_server: FhirJsonServer, service_log: list[str], status: int
) -> None:
    chart(fhir_json_server, "pub-clean")
    fhir_json_server.fail = {"Patient": status, "Condition": status}
    fhir_json_server.echo_authorization = True
    service_id, bare = scenario_request("pub-clean", discovery, fhir_server=fhir_json_server.base, prefetch=False)
    token = "opaque-ehr-secret-0123456789"
    bare["fhirAuthorization"] = {**authorization(), "access_token": token}
    with live(allowed_fhir_servers=(fhir_json_server.base,)) as url:
        response = post(f"{url}/cds-services/{service_id}", bare)
    assert response.status_code == 412, response.text
    assert "token rejected: Bearer [REDACTED]" in response.text  # the server's message is kept ...
    assert token not in response.text  # ... without the token
    assert service_log and not any(token in line for line in service_log)
    assert any(auth == f"Bearer {token}" for _, auth in fhir_json_server.requests)  # it was sent, to the server


@pytest.mark.parametrize("token", ["caf\u00e9-token", "two words", "line\r\nX-Injected: 1", "tab\there"])
def test_an_access_token_that_cannot_be_a_header_is_400_and_nothing_is_fetched(
    live: Any, discovery: dict[str, Any], fhir_json_server: FhirJsonServer, token: str
) -> None:
    """Once a 500 (a non-ASCII token cannot be encoded) or, with CR/LF, a failed fetch counted
    against the healthy server in readiness."""
    chart(fhir_json_server, "pub-clean")
    service_id, bare = scenario_request("pub-clean", discovery, fhir_server=fhir_json_server.base, prefetch=False)
    bare["fhirAuthorization"] = {**authorization(), "access_token": token}
    with live(allowed_fhir_servers=(fhir_json_server.base,)) as url:
        response = post(f"{url}/cds-services/{service_id}", bare)
        lane = httpx.get(f"{url}/readyz").json()["checks"]["fhirServers"][fhir_json_server.base]
    assert response.status_code == 400, response.text
    assert "fhirAuthorization.access_token" in response.text and "RFC 6750" in response.text
    assert token not in response.text
    assert fhir_json_server.requests == [] and lane["consecutiveFailures"] == 0
