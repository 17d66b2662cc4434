"""A draft may name its drug through a Medication only the FHIR server holds: the service reads it."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any, Callable

import httpx

from tests.support.fhir_server import FhirServer
from tests.support.scenarios import build_request, load_scenario

PROBE = Path(__file__).resolve().parent / "fixtures" / "own-p-medref-record-160.json"


def test_a_medication_on_the_fhir_server_is_read_for_a_draft(
    live: Callable[..., Any], fhir_server: FhirServer, discovery: dict[str, Any], tmp_path: Path
) -> None:
    scenario = load_scenario(PROBE, date.today())
    fhir_server.reset()
    fhir_server.load(scenario.record)
    service = next(s for s in discovery["services"]
                   if s["hook"] == scenario.hook and s["id"].startswith("levomilnacipran-"))
    request = build_request(scenario, service, fhir_server=fhir_server.base_url, prefetch=False)
    with live(allowed_fhir_servers=(fhir_server.base_url,)) as base:
        response = httpx.post(f"{base}/cds-services/{service['id']}", json=request, timeout=30)
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["dose-limit"], json.dumps(cards)[:500]
    assert "160 mg/day exceeds the 120 mg/day maximum" in cards[0]["summary"]
