"""At run time, an expression that cannot be evaluated on odd request data never hides a card
silently: the order's cards say which checks could not be evaluated, a notice card does when no
card fired, and the count shows on /healthz."""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

import httpx
import pytest

from fhir_module.api import create_app
from fhir_module.config import Settings
from fhir_module.engine import Engine, KnowledgeBase
from fhir_module.engine.cards import ENGINE_NOTICE_SYSTEM, NOT_EVALUATED
from fhir_module.fhir.builtin import module_resources
from fhir_module.knowledge import builtin_module_dir
from tests.api.helpers import serve_app
from tests.support.scenarios import build_request, load_scenario

CASES = builtin_module_dir("levomilnacipran") / "cases" / "public"
TODAY = date.today()
# A route whose text is a number: `text.lower()` cannot be evaluated on it.
UNREADABLE_ROUTE = {"text": 42}


def _fragile(*rules: str) -> Engine:
    """The built-in knowledge with one order-kind variable that cannot be evaluated on a route text
    that is not text (%routeText), read by the conditions of these rules (D1: maximum daily dose,
    D4: once daily). The built-in rules themselves read such data only through the engine's functions."""
    resources = copy.deepcopy(list(module_resources("levomilnacipran")))
    for plan in (r for r in resources if r["resourceType"] == "PlanDefinition"):
        kind = plan["action"][0]
        kind["extension"].append({"url": "http://hl7.org/fhir/StructureDefinition/variable", "valueExpression": {
            "name": "routeText", "language": "text/fhirpath",
            "expression": "%order.dosageInstruction.route.text.lower()"}})

        def read_it(action: dict[str, Any]) -> None:
            if action.get("id") in rules:
                condition = action["condition"][0]["expression"]
                condition["expression"] = f"({condition['expression']}) and %routeText.count() < 10"
            for child in action.get("action") or []:
                read_it(child)

        read_it(kind)
    return Engine(KnowledgeBase(resources))


def _request(engine: Engine, case: str, route: Any = None) -> tuple[str, dict[str, Any]]:
    scenario = load_scenario(CASES / f"{case}.json", TODAY)
    service = next(s for s in engine.services() if s["hook"] == scenario.hook)
    request = build_request(scenario, service, fhir_server=None, prefetch=True, today=TODAY)
    if route is not None:
        for entry in request["context"]["draftOrders"]["entry"]:
            entry["resource"]["dosageInstruction"][0]["route"] = route
    return service["id"], request


def _topics(response: dict[str, Any]) -> list[str]:
    return [card["source"]["topic"]["code"] for card in response["cards"]]


def test_the_cards_that_fire_say_which_checks_could_not_be_evaluated() -> None:
    engine = _fragile("D4")
    service_id, request = _request(engine, "pub-max-dose", UNREADABLE_ROUTE)
    response = engine.evaluate(service_id, request, today=TODAY)
    assert "dose-limit" in _topics(response) and NOT_EVALUATED not in _topics(response)
    for card in response["cards"]:
        assert "**Not evaluated**" in card["detail"] and "- Levomilnacipran order: Once daily" in card["detail"]
    assert engine.evaluation_failures.by_check() == {"Levomilnacipran order: Once daily": 1}


def test_with_no_card_a_notice_card_says_what_could_not_be_checked() -> None:
    engine = _fragile("D1")
    service_id, request = _request(engine, "pub-clean")
    assert engine.evaluate(service_id, request, today=TODAY)["cards"] == []  # the clean order is fine
    service_id, request = _request(engine, "pub-clean", UNREADABLE_ROUTE)
    cards = engine.evaluate(service_id, request, today=TODAY)["cards"]
    assert len(cards) == 1
    notice = cards[0]
    assert notice["indicator"] == "info"
    assert notice["source"]["topic"] == {"system": ENGINE_NOTICE_SYSTEM, "code": NOT_EVALUATED,
                                         "display": "Checks that could not be evaluated"}
    assert "could not be evaluated" in notice["summary"] and len(notice["summary"]) < 140
    assert "Levomilnacipran order: Maximum daily dose" in notice["detail"]
    assert engine.evaluation_failures.total == 1


def test_a_shared_variable_that_fails_stops_every_check_that_reads_it_and_only_those() -> None:
    engine = _fragile("D1", "D4")
    service_id, request = _request(engine, "pub-max-dose")
    assert "dose-limit" in _topics(engine.evaluate(service_id, request, today=TODAY))  # readable: D1 fires
    service_id, request = _request(engine, "pub-max-dose", UNREADABLE_ROUTE)
    response = engine.evaluate(service_id, request, today=TODAY)
    assert _topics(response) == [NOT_EVALUATED]  # D1 could not be evaluated: not fired, and said
    assert set(engine.evaluation_failures.by_check()) == {
        "Levomilnacipran order: Maximum daily dose", "Levomilnacipran order: Once daily"}
    said = response["cards"][0]["detail"]
    assert "Maximum daily dose" in said and "Once daily" in said


def test_a_failing_text_part_still_sends_the_card() -> None:
    resources = copy.deepcopy(list(module_resources("levomilnacipran")))
    for plan in (r for r in resources if r["resourceType"] == "PlanDefinition"):
        for group in plan["action"][0]["action"]:
            if group.get("id") == "dose-limit":
                for extension in group["extension"]:
                    for part in extension.get("extension", []):
                        if part["url"] == "detail":
                            part["valueString"] += " Route: {{%order.dosageInstruction.route.text.lower()}}."
    engine = Engine(KnowledgeBase(resources))
    service_id, request = _request(engine, "pub-max-dose", UNREADABLE_ROUTE)
    cards = engine.evaluate(service_id, request, today=TODAY)["cards"]
    dose = next(card for card in cards if card["source"]["topic"]["code"] == "dose-limit")
    assert "Route: (could not be evaluated)." in dose["detail"]
    assert dose["suggestions"]  # the card and its suggestion still go out


def test_healthz_counts_checks_that_could_not_be_evaluated(tmp_path: Any) -> None:
    engine = _fragile("D1")
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'fb.sqlite3'}"), engine)
    with serve_app(app) as url:
        assert httpx.get(f"{url}/healthz").json()["evaluationFailures"] == 0
        service_id, request = _request(engine, "pub-clean", UNREADABLE_ROUTE)
        answer = httpx.post(f"{url}/cds-services/{service_id}", json=request, timeout=30)
        assert answer.status_code == 200
        assert _topics(answer.json()) == [NOT_EVALUATED]
        assert httpx.get(f"{url}/healthz").json()["evaluationFailures"] == 1


@pytest.mark.parametrize("route", [{"text": ["oral", "iv"]}, {"text": {"nested": True}}, UNREADABLE_ROUTE])
def test_odd_route_data_is_said_not_swallowed(route: Any) -> None:
    engine = _fragile("D1")
    service_id, request = _request(engine, "pub-clean", route)
    response = engine.evaluate(service_id, request, today=TODAY)
    assert _topics(response) == [NOT_EVALUATED]
    json.dumps(response)
