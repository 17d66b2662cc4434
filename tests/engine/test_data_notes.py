"""Missing data never fires a card, but the cards that do fire say what could not be checked."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from fhir_module.engine import Engine
from fhir_module.knowledge import builtin_module_dir
from tests.support.scenarios import build_request, load_scenario, module_services

OWN = builtin_module_dir("levomilnacipran") / "cases" / "own"
ENGINE = Engine.default()
SERVICES = module_services(ENGINE.services(), "levomilnacipran")


def _details(scenario_id: str) -> list[str]:
    scenario = load_scenario(OWN / f"{scenario_id}.json", date.today())
    service = SERVICES[scenario.hook]
    response = ENGINE.evaluate(service["id"], build_request(scenario, service, fhir_server=None, prefetch=True))
    assert response["cards"], "the scenario needs a card that fires"
    return [card["detail"] for card in response["cards"]]


def _cards(scenario_id: str) -> dict[str, str]:
    scenario = load_scenario(OWN / f"{scenario_id}.json", date.today())
    service = SERVICES[scenario.hook]
    response = ENGINE.evaluate(service["id"], build_request(scenario, service, fhir_server=None, prefetch=True))
    return {card["source"]["topic"]["code"]: card["detail"] for card in response["cards"]}


@pytest.mark.parametrize(("scenario_id", "unsaid"), [
    ("own-p-missing-hr-bp-mention", "no heart rate in the last 30 days"),
    ("own-p-missing-hr-bp-mention", "no blood pressure in the last 30 days"),
    ("own-p-missing-renal-ckd-mention", "No renal function"),
    ("own-p-missing-current-dose-mention", "The current levomilnacipran dose could not be computed"),
])
def test_a_note_is_not_said_on_cards_whose_rules_do_not_need_its_data(scenario_id: str, unsaid: str) -> None:
    """Issue 12: a serotonergic card does not carry notes about renal function, heart rate, blood
    pressure or the current dose (168 of 198 cards carried the renal note, MAOI and allergy cards too)."""
    details = _details(scenario_id)
    assert not any(unsaid in detail for detail in details)


@pytest.mark.parametrize(("scenario_id", "topic", "said"), [
    ("own-d-sex-other-no-renal", "dose-limit", "No renal function"),
    ("own-p-name-fetzima-120bid", "dose-limit", "No renal function"),
    ("own-d-note-current-dose-unknown", "dose-limit", "The current levomilnacipran dose could not be computed"),
    ("own-d-note-age-unknown-epilepsy", "monitoring", "Age unknown"),
    ("own-d-note-renal-esrd-condition", "esrd", "No renal function"),
])
def test_a_note_is_said_on_the_cards_whose_rules_need_its_data(scenario_id: str, topic: str, said: str) -> None:
    cards = _cards(scenario_id)
    assert said in cards[topic], cards[topic]


@pytest.mark.parametrize(("scenario_id", "topic", "unsaid"), [
    ("own-d-note-renal-esrd-condition", "maoi-washout", "No renal function"),
    ("own-d-note-age-unknown-epilepsy", "maoi-washout", "Age unknown"),
])
def test_the_same_note_is_not_said_on_another_card_of_the_order(scenario_id: str, topic: str, unsaid: str) -> None:
    cards = _cards(scenario_id)
    assert unsaid not in cards[topic], cards[topic]


def test_a_note_is_not_said_when_its_data_is_there() -> None:
    # The public renal scenario has a measured CrCl: no renal note on its dose card.
    scenario = load_scenario(builtin_module_dir("levomilnacipran") / "cases" / "public" / "pub-renal-moderate.json",
                             date.today())
    service = SERVICES[scenario.hook]
    cards = ENGINE.evaluate(service["id"], build_request(scenario, service, fhir_server=None, prefetch=True))["cards"]
    assert cards and not any("No renal function" in card["detail"] for card in cards)
