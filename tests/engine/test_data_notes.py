"""Missing data never fires a card, but the cards that do fire say what could not be checked."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from fhir_module.engine import Engine
from fhir_module.knowledge import builtin_module_dir
from tests.support.scenarios import build_request, load_scenario

OWN = builtin_module_dir("levomilnacipran") / "cases" / "own"
ENGINE = Engine.default()
SERVICES = {s["hook"]: s for s in ENGINE.services()}


def _details(scenario_id: str) -> list[str]:
    scenario = load_scenario(OWN / f"{scenario_id}.json", date.today())
    service = SERVICES[scenario.hook]
    response = ENGINE.evaluate(service["id"], build_request(scenario, service, fhir_server=None, prefetch=True))
    assert response["cards"], "the scenario needs a card that fires"
    return [card["detail"] for card in response["cards"]]


@pytest.mark.parametrize(("scenario_id", "said"), [
    ("own-p-missing-hr-bp-mention", "no heart rate in the last 30 days"),
    ("own-p-missing-hr-bp-mention", "no blood pressure in the last 30 days"),
    ("own-p-missing-renal-ckd-mention", "No renal function"),
    ("own-p-missing-current-dose-mention", "The current levomilnacipran dose could not be computed"),
])
def test_what_could_not_be_checked_is_said_on_every_card(scenario_id: str, said: str) -> None:
    assert all(said in detail for detail in _details(scenario_id))


def test_a_note_is_not_said_when_its_data_is_there() -> None:
    # The public renal scenario has a measured CrCl: no renal note on its dose card.
    scenario = load_scenario(builtin_module_dir("levomilnacipran") / "cases" / "public" / "pub-renal-moderate.json",
                             date.today())
    service = SERVICES[scenario.hook]
    cards = ENGINE.evaluate(service["id"], build_request(scenario, service, fhir_server=None, prefetch=True))["cards"]
    assert cards and not any("No renal function" in card["detail"] for card in cards)
