"""Issue 11's unreadable doses, as sent then, over HTTP: each once gave `{"cards": []}` where 120 mg
gives a card. A number JSON does not have (NaN, Infinity, 1e400) is a 400; a dose that is valid JSON
but cannot be read (a string, no value, frequency 0, an unknown period unit) gets the info card that
says the dose could not be checked, never silence. (The clinical side, every reason and the cards
beside it: tests/scenarios/test_unreadable_doses.py.)"""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any, Callable

import httpx
import pytest

from fhir_module.knowledge import builtin_module_dir
from tests.support.scenarios import build_request, card_topic, load_scenario

BASE_CASE = builtin_module_dir("levomilnacipran") / "cases" / "own" / "own-d-bad-dose-base.json"  # 20 mg once daily
PLACE = '"PLACE"'
Edit = Callable[[dict[str, Any]], None]


def dose(value: Any) -> Edit:
    def edit(dosage: dict[str, Any]) -> None:
        dosage["doseAndRate"][0]["doseQuantity"]["value"] = value
    return edit


def repeat(key: str, value: Any) -> Edit:
    def edit(dosage: dict[str, Any]) -> None:
        dosage["timing"]["repeat"][key] = value
    return edit


def no_dose_value(dosage: dict[str, Any]) -> None:
    del dosage["doseAndRate"][0]["doseQuantity"]["value"]


NOT_JSON = [("NaN", dose("PLACE"), "NaN"), ("Infinity", dose("PLACE"), "Infinity"), ("1e400", dose("PLACE"), "1e400"),
            ("frequency 1e400", repeat("frequency", "PLACE"), "1e400"), ("frequency NaN", repeat("frequency", "PLACE"), "NaN")]
UNREADABLE = [('"120"', dose("120")), ("a missing value", no_dose_value), ("frequency 0", repeat("frequency", 0)),
              ('periodUnit "zz"', repeat("periodUnit", "zz"))]


@pytest.fixture(scope="module")
def order_select(engine: Any) -> tuple[str, dict[str, Any]]:
    """(service id, the base case's request) for levomilnacipran's order-select."""
    today = date.today()
    scenario = load_scenario(BASE_CASE, today)
    service = next(s for s in engine.services() if s["id"] == "levomilnacipran-order-select")
    return service["id"], build_request(scenario, service, fhir_server=None, prefetch=True, today=today)


def send(base_url: str, order_select: tuple[str, dict[str, Any]], edit: Edit, value: str | None = None) -> httpx.Response:
    service_id, request = order_select
    body = copy.deepcopy(request)
    edit(body["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0])
    text = json.dumps(body)
    if value is not None:
        text = text.replace(PLACE, value, 1)
    return httpx.post(f"{base_url}/cds-services/{service_id}", content=text.encode(),
                      headers={"Content-Type": "application/json"}, timeout=30)


def test_120_mg_gives_a_card(base_url: str, order_select: tuple[str, dict[str, Any]]) -> None:
    answer = send(base_url, order_select, dose(120))
    assert answer.status_code == 200 and answer.json()["cards"], answer.text  # the contrast the issue drew


@pytest.mark.parametrize(("what", "edit", "value"), NOT_JSON, ids=[n[0] for n in NOT_JSON])
def test_a_number_json_does_not_have_is_400(base_url: str, order_select: tuple[str, dict[str, Any]],
                                            what: str, edit: Edit, value: str) -> None:
    answer = send(base_url, order_select, edit, value)
    assert answer.status_code == 400, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome" and "not valid JSON" in answer.text


@pytest.mark.parametrize(("what", "edit"), UNREADABLE, ids=[u[0] for u in UNREADABLE])
def test_a_dose_that_cannot_be_read_is_said(base_url: str, order_select: tuple[str, dict[str, Any]],
                                            what: str, edit: Edit) -> None:
    answer = send(base_url, order_select, edit)
    assert answer.status_code == 200, answer.text
    cards = answer.json()["cards"]
    assert [(card_topic(c), c["indicator"]) for c in cards] == [("dose-not-checked", "info")], cards
    assert "not an all-clear" in cards[0]["detail"]
