"""What the engine writes from the request's own JSON: a suggested order shares the parts of the
clinician's draft it keeps (it is built once per card, copying them cost every request), so no step
may change them in place; and card ids are the name-based uuid5 they always were."""

from __future__ import annotations

import copy
import uuid
from datetime import date

from fhir_module.engine import Engine
from fhir_module.engine.cards import CARD_NAMESPACE, card_uuid
from fhir_module.knowledge import builtin_module_dir, case_files
from tests.support.scenarios import build_request, load_scenario

ENGINE = Engine.default()
TODAY = date.today()


def test_card_ids_are_the_uuid5_of_their_identity() -> None:
    for name in ["", "hook|dose-limit|MedicationRequest/a", "é ü 漢字|x", "x" * 5000]:
        assert card_uuid(name) == str(uuid.uuid5(CARD_NAMESPACE, name))


def test_making_cards_changes_nothing_in_the_request_and_updates_carry_their_own_dosage() -> None:
    updates = 0
    for module in ("levomilnacipran", "duloxetine"):
        folder = builtin_module_dir(module)
        services = {s["hook"]: s for s in ENGINE.services() if s["id"].startswith(f"{folder.name}-")}
        for path in case_files(folder):
            scenario = load_scenario(path, TODAY)
            service = services[scenario.hook]
            request = build_request(scenario, service, fhir_server=None, prefetch=True, today=TODAY)
            before = copy.deepcopy(request)
            try:
                cards = ENGINE.evaluate(service["id"], request, today=TODAY)["cards"]
            except Exception:  # noqa: BLE001 - a request the engine refuses makes no card
                assert request == before, scenario.id
                continue
            assert request == before, scenario.id
            drafts = {f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"]
                      for e in request["context"]["draftOrders"].get("entry") or [] if isinstance(e.get("resource"), dict)}
            for card in cards:
                for suggestion in card.get("suggestions") or []:
                    for action in suggestion["actions"]:
                        if action["type"] != "update":
                            continue
                        updates += 1
                        resource = action["resource"]
                        draft = drafts[f"{resource['resourceType']}/{resource['id']}"]
                        assert resource is not draft and resource["dosageInstruction"] is not draft.get("dosageInstruction")
                        assert resource["dosageInstruction"] != draft.get("dosageInstruction"), scenario.id
    assert updates > 20  # the cases suggest many dose changes: the checks above were made
