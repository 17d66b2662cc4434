"""Every built-in module's cases, run the way an EHR runs them, against the service under uvicorn
serving all the built-in modules side by side; each case goes to its own module's service.

Two ways per case: the EHR fills the prefetch from the discovery templates; or it sends no
prefetch and the chart sits on a real FHIR server (Medplum's router on loopback), which the
service queries. Both must give the expected cards.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from fhir_module.api import create_app
from fhir_module.config import Settings
from fhir_module.engine import Engine
from fhir_module.knowledge import builtin_module_dirs, case_files
from tests.api.helpers import serve_app
from tests.support.fhir_server import FhirServer
from tests.engine.test_ehr_scenarios import KNOWN_ENGINE_FAILURES
from tests.support.scenarios import Scenario, build_request, compare_cards, load_scenario

TODAY = date.today()
# (module id, case): the module folder's name is its id.
CASES = [(folder.name, load_scenario(path, TODAY)) for folder in builtin_module_dirs() for path in case_files(folder)]
SCENARIOS = [
    pytest.param(module, s, marks=pytest.mark.xfail(reason=KNOWN_ENGINE_FAILURES[s.id], strict=True))
    if s.id in KNOWN_ENGINE_FAILURES else pytest.param(module, s)
    for module, s in CASES
]
_IDS = [s.id for _, s in CASES]


@pytest.fixture(scope="module")
def service(fhir_server: FhirServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("feedback") / "feedback.sqlite3"
    settings = Settings(allowed_fhir_servers=(fhir_server.base_url,), database_url=f"sqlite:///{database}")
    with serve_app(create_app(settings, Engine.default())) as url:
        yield url


@pytest.fixture(scope="module")
def services_by_module(service: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Discovery's services by (module, hook): a module's services are `<module>-<hook>`."""
    response = httpx.get(f"{service}/cds-services", timeout=10)
    response.raise_for_status()
    return {(entry["id"].removesuffix(f"-{entry['hook']}"), entry["hook"]): entry for entry in response.json()["services"]}


@pytest.fixture(scope="module")
def discovery(services_by_module: dict[tuple[str, str], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The levomilnacipran module's services by hook (for tests of its cases)."""
    return {hook: entry for (module, hook), entry in services_by_module.items() if module == "levomilnacipran"}


def _call(service: str, entry: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{service}/cds-services/{entry['id']}", json=request, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _problems(scenario: Scenario, response: dict[str, Any]) -> str:
    cards = [f"{c['indicator']} {c['source']['topic']['code']}: {c['summary']}" for c in response["cards"]]
    return f"{scenario.id} ({scenario.description}): {compare_cards(scenario.expect, response)}; got {cards}"


def test_there_are_cases_of_every_built_in_module() -> None:
    modules = {module for module, _ in CASES}
    assert modules == {folder.name for folder in builtin_module_dirs()} and len(modules) >= 2
    assert len(SCENARIOS) >= 300


@pytest.mark.parametrize(("module", "scenario"), SCENARIOS, ids=_IDS)
def test_scenario_with_prefetch(module: str, scenario: Scenario, service: str,
                                services_by_module: dict[tuple[str, str], Any]) -> None:
    entry = services_by_module[(module, scenario.hook)]
    response = _call(service, entry, build_request(scenario, entry, fhir_server=None, prefetch=True, today=TODAY))
    assert not compare_cards(scenario.expect, response), _problems(scenario, response)


@pytest.mark.parametrize(("module", "scenario"), SCENARIOS, ids=_IDS)
def test_scenario_fetched_from_fhir_server(
    module: str, scenario: Scenario, service: str, services_by_module: dict[tuple[str, str], Any], fhir_server: FhirServer
) -> None:
    fhir_server.reset()
    fhir_server.load(scenario.record)
    entry = services_by_module[(module, scenario.hook)]
    request = build_request(scenario, entry, fhir_server=fhir_server.base_url, prefetch=False, today=TODAY)
    response = _call(service, entry, request)
    assert not compare_cards(scenario.expect, response), _problems(scenario, response)
