"""Doses that are valid JSON but cannot be read (clinical-rules.md, decisions: bad numbers).

A zero frequency, an unknown period unit, a number written as a string, a local frequency code: no
dose card, every card that fires says the dose could not be checked, and when nothing else fires an
info card says so and why, so that silence never means "checked and fine". Such drafts are not valid
R4, so they cannot be scenario files (those are checked to be valid R4): each test takes a valid case
of the module and breaks its draft, then runs it through the engine and over HTTP in both modes
(prefetch filled; no prefetch, the chart on the FHIR test server: drafts always travel in the
context).
"""

from __future__ import annotations

import copy
from datetime import date
from typing import Any, Callable

import httpx
import pytest

from fhir_module.engine import Engine
from fhir_module.knowledge import builtin_module_dir
from tests.scenarios.test_scenarios_http import discovery, service, services_by_module  # noqa: F401 - the module's fixtures
from tests.support.fhir_server import FhirServer
from tests.support.scenarios import Scenario, build_request, card_topic, load_scenario, module_services

OWN = builtin_module_dir("levomilnacipran") / "cases" / "own"
TODAY = date.today()
ENGINE = Engine.default()
SERVICES = module_services(ENGINE.services(), "levomilnacipran")


def _repeat(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(dosage: dict[str, Any]) -> None:
        dosage["timing"]["repeat"][key] = value
    return edit


def _dose_value(value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(dosage: dict[str, Any]) -> None:
        dosage["doseAndRate"][0]["doseQuantity"]["value"] = value
    return edit


def _dose_unit(unit: str) -> Callable[[dict[str, Any]], None]:
    def edit(dosage: dict[str, Any]) -> None:
        dosage["doseAndRate"][0]["doseQuantity"].update(unit=unit, code=unit)
    return edit


def _timing_code(code: str) -> Callable[[dict[str, Any]], None]:
    def edit(dosage: dict[str, Any]) -> None:
        dosage["timing"] = {"code": {"coding": [{"system": "urn:oid:1.2.3.4.5.9", "code": code}]}}
    return edit


# (name, how the draft's dosage is broken, what the card must say about why)
BROKEN = [
    ("zero-frequency", _repeat("frequency", 0), "frequency is not a positive number"),
    ("string-frequency", _repeat("frequency", "2"), "frequency is not a positive number"),
    ("zero-period", _repeat("period", 0), "no positive period"),
    ("unknown-period-unit", _repeat("periodUnit", "fortnight"), '"fortnight" is not a time unit'),
    ("string-dose", _dose_value("20"), "missing or not a number"),
    ("zero-dose", _dose_value(0), "not a positive amount"),
    ("puffs", _dose_unit("puff"), '"puff" is neither a mass nor a capsule/tablet count'),
    ("local-code-q12hr", _timing_code("Q12HR"), '"Q12HR" is not one the service can read'),
]


def _broken(case: str, edit: Callable[[dict[str, Any]], None]) -> Scenario:
    scenario = copy.deepcopy(load_scenario(OWN / f"{case}.json", TODAY))
    edit(scenario.draft_orders[0]["dosageInstruction"][0])
    return scenario


def _engine(scenario: Scenario) -> list[dict[str, Any]]:
    service = SERVICES[scenario.hook]
    request = build_request(scenario, service, fhir_server=None, prefetch=True, today=TODAY)
    return ENGINE.evaluate(service["id"], request, today=TODAY)["cards"]


def _http(scenario: Scenario, service_url: str, entry: dict[str, Any], fhir_server: FhirServer | None) -> list[dict[str, Any]]:
    if fhir_server is not None:
        fhir_server.reset()
        fhir_server.load(scenario.record)
    request = build_request(scenario, entry, fhir_server=fhir_server.base_url if fhir_server else None,
                            prefetch=fhir_server is None, today=TODAY)
    response = httpx.post(f"{service_url}/cds-services/{entry['id']}", json=request, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["cards"]


def _only_the_dose_card(cards: list[dict[str, Any]], why: str) -> None:
    assert [(card_topic(c), c["indicator"]) for c in cards] == [("dose-not-checked", "info")], cards
    assert why in cards[0]["detail"], cards[0]["detail"]
    assert "not an all-clear" in cards[0]["detail"]


@pytest.mark.parametrize(("name", "edit", "why"), BROKEN, ids=[b[0] for b in BROKEN])
def test_an_unreadable_dose_alone_gives_the_dose_not_checked_card(name: str, edit, why: str) -> None:
    _only_the_dose_card(_engine(_broken("own-d-bad-dose-base", edit)), why)


@pytest.mark.parametrize("mode", ["prefetch", "fetched"])
@pytest.mark.parametrize(("name", "edit", "why"), BROKEN[:4], ids=[b[0] for b in BROKEN[:4]])
def test_an_unreadable_dose_over_http(name: str, edit, why: str, mode: str, service: str,  # noqa: F811
                                      discovery: dict[str, Any], fhir_server: FhirServer) -> None:  # noqa: F811
    scenario = _broken("own-d-bad-dose-base", edit)
    cards = _http(scenario, service, discovery[scenario.hook], fhir_server if mode == "fetched" else None)
    _only_the_dose_card(cards, why)


@pytest.mark.parametrize("mode", ["engine", "prefetch", "fetched"])
def test_every_card_that_fires_says_the_dose_was_not_checked(mode: str, service: str,  # noqa: F811
                                                             discovery: dict[str, Any], fhir_server: FhirServer) -> None:  # noqa: F811
    scenario = _broken("own-d-bad-dose-local-q12hr-maoi", _repeat_or_code_zero)
    if mode == "engine":
        cards = _engine(scenario)
    else:
        cards = _http(scenario, service, discovery[scenario.hook], fhir_server if mode == "fetched" else None)
    assert [card_topic(c) for c in cards] == ["maoi-washout"], "no dose card, and no dose-not-checked card beside it"
    assert "Daily dose could not be computed" in cards[0]["detail"]


def _repeat_or_code_zero(dosage: dict[str, Any]) -> None:
    dosage["timing"] = {"repeat": {"frequency": 0, "period": 1, "periodUnit": "d"}}


def test_on_order_sign_the_info_card_is_not_returned() -> None:
    """order-sign returns only warning and critical cards (clinical-rules.md, alert fatigue)."""
    scenario = _broken("own-d-bad-dose-base", _repeat("frequency", 0))
    scenario.hook = "order-sign"
    assert _engine(scenario) == []
