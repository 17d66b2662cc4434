"""Every clinical scenario, run the way an EHR runs it, against the service under uvicorn.

Two ways per scenario: the EHR fills the prefetch from the discovery templates; or it sends no
prefetch and the chart sits on a real FHIR server (Medplum's router on loopback), which the
service queries. Both must give the expected cards.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_module.api import create_app
from fhir_module.config import Settings
from fhir_module.engine import Engine
from fhir_module.knowledge import builtin_module_dir
from tests.api.helpers import serve_app
from tests.support.fhir_server import FhirServer
from tests.engine.test_ehr_scenarios import KNOWN_ENGINE_FAILURES
from tests.support.scenarios import Scenario, build_request, compare_cards, load_scenarios

CASES = builtin_module_dir("levomilnacipran") / "cases"
TODAY = date.today()
SCENARIOS = [
    pytest.param(s, marks=pytest.mark.xfail(reason=KNOWN_ENGINE_FAILURES[s.id], strict=True))
    if s.id in KNOWN_ENGINE_FAILURES else s
    for folder in ("public", "own", "ehr") if (CASES / folder).is_dir()
    for s in load_scenarios(CASES / folder, TODAY)
]


@pytest.fixture(scope="module")
def service(fhir_server: FhirServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("feedback") / "feedback.sqlite3"
    settings = Settings(allowed_fhir_servers=(fhir_server.base_url,), database_url=f"sqlite:///{database}")
    with serve_app(create_app(settings, Engine.default())) as url:
        yield url


@pytest.fixture(scope="module")
def discovery(service: str) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{service}/cds-services", timeout=10)
    response.raise_for_status()
    return {entry["hook"]: entry for entry in response.json()["services"]}


def _call(service: str, entry: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{service}/cds-services/{entry['id']}", json=request, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _problems(scenario: Scenario, response: dict[str, Any]) -> str:
    cards = [f"{c['indicator']} {c['source']['topic']['code']}: {c['summary']}" for c in response["cards"]]
    return f"{scenario.id} ({scenario.description}): {compare_cards(scenario.expect, response)}; got {cards}"


def test_there_are_scenarios() -> None:
    assert len(SCENARIOS) >= 12


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id if isinstance(s, Scenario) else str(s))
def test_scenario_with_prefetch(scenario: Scenario, service: str, discovery: dict[str, Any]) -> None:
    entry = discovery[scenario.hook]
    response = _call(service, entry, build_request(scenario, entry, fhir_server=None, prefetch=True, today=TODAY))
    assert not compare_cards(scenario.expect, response), _problems(scenario, response)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id if isinstance(s, Scenario) else str(s))
def test_scenario_fetched_from_fhir_server(
    scenario: Scenario, service: str, discovery: dict[str, Any], fhir_server: FhirServer
) -> None:
    fhir_server.reset()
    fhir_server.load(scenario.record)
    entry = discovery[scenario.hook]
    request = build_request(scenario, entry, fhir_server=fhir_server.base_url, prefetch=False, today=TODAY)
    response = _call(service, entry, request)
    assert not compare_cards(scenario.expect, response), _problems(scenario, response)
