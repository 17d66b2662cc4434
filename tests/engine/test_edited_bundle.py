"""The bundle is the knowledge: edit the maximum dose in an exported bundle and the service follows."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from fhir_module.fhir.builtin import module_resources

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _bundle_with_max(limit: int) -> dict[str, Any]:
    resources = json.loads(json.dumps(list(module_resources("levomilnacipran"))))
    edited = 0
    for resource in resources:
        if resource["resourceType"] != "PlanDefinition":
            continue
        for kind in resource["action"]:
            for group in kind.get("action", []):
                for rule in group.get("action", []):
                    if rule.get("id") != "D1":
                        continue
                    for extension in rule["extension"]:
                        expression = extension.get("valueExpression", {})
                        if expression.get("name") == "limit":
                            expression["expression"] = str(limit)
                            edited += 1
    assert edited == 2, "D1's limit should be in both PlanDefinitions"
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(dose_mg: int) -> dict[str, Any]:
    today = date.today()
    patient = {"resourceType": "Patient", "id": "p1", "gender": "male",
               "birthDate": f"{today.year - 45}-01-01"}
    draft = {
        "resourceType": "MedicationRequest", "id": "d1", "status": "draft", "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "1433239"}]},
        "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                               "doseAndRate": [{"doseQuantity": {"value": dose_mg, "unit": "mg",
                                                                 "system": "http://unitsofmeasure.org", "code": "mg"}}]}],
    }
    levo_current = dict(draft, id="current", status="active", dosageInstruction=[{
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": dose_mg - 20, "unit": "mg"}}]}])
    draft["priorPrescription"] = {"reference": "MedicationRequest/current"}
    empty = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    return {
        "hookInstance": "0b5d3a3e-0000-4000-8000-000000000001",
        "hook": "order-select",
        "context": {"userId": "Practitioner/1", "patientId": "p1", "selections": ["MedicationRequest/d1"],
                    "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": draft}]}},
        "prefetch": {"patient": patient,
                     "medicationRequests": {"resourceType": "Bundle", "type": "searchset",
                                            "entry": [{"resource": levo_current}]},
                     "medicationStatements": empty, "conditions": empty, "allergyIntolerances": empty,
                     "observations": empty},
    }


def _serve(bundle_path: Path, tmp_path: Path):
    port = _free_port()
    env = dict(os.environ, FHIR_MODULE_DATABASE_URL=f"sqlite:///{tmp_path / 'fb.sqlite3'}")
    env.pop("FHIR_MODULE_TRUSTED_CLIENTS", None)
    process = subprocess.Popen(
        # The edited maximum contradicts the module's own cases (tests/selftest shows serve refusing
        # it): serving it anyway is the expert's --skip-self-test.
        [sys.executable, "-m", "fhir_module.cli", "serve", "--port", str(port), "--bundle", str(bundle_path),
         "--skip-self-test"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {process.stdout.read() if process.stdout else ''}")
        time.sleep(0.2)
    process.kill()
    raise AssertionError("serve did not become healthy")


def _dose_cards(base: str, dose_mg: int) -> list[dict[str, Any]]:
    response = httpx.post(f"{base}/cds-services/levomilnacipran-order-select", json=_request(dose_mg), timeout=30)
    assert response.status_code == 200, response.text
    return [c for c in response.json()["cards"] if c["source"]["topic"]["code"] == "dose-limit"]


def test_serving_an_edited_bundle_follows_the_new_maximum(tmp_path: Path) -> None:
    for limit, expect_card_at_110 in ((120, False), (100, True)):
        path = tmp_path / f"bundle-{limit}.json"
        path.write_text(json.dumps(_bundle_with_max(limit)), encoding="utf-8")
        process, base = _serve(path, tmp_path)
        try:
            cards = _dose_cards(base, 110)
            assert bool(cards) == expect_card_at_110, cards
            if expect_card_at_110:
                assert "100 mg/day maximum" in cards[0]["summary"]
                resource = cards[0]["suggestions"][0]["actions"][0]["resource"]
                assert resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 100
        finally:
            process.terminate()
            process.wait(timeout=20)
