"""Every suggested phase is one capsule of the product the suggestion names (clinical-rules.md:
extended-release capsules are not split; issue 9: the 20-then-40 mg titration named one 20 mg
product, so its 40 mg phase was two capsules). A dose no capsule has (a 60 mg step) is whole
capsules of the product named."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fhir_module.engine import Engine
from fhir_module.engine.clinical.valueset import normalise_code
from fhir_module.knowledge import builtin_module_dir, case_files, load_knowledge
from tests.support.scenarios import build_request, card_topic, load_scenario

MODULE = builtin_module_dir("levomilnacipran")
KNOWLEDGE = load_knowledge(MODULE)
ENGINE = Engine.default()
SERVICES = {s["hook"]: s for s in ENGINE.services() if s["id"].startswith(f"{MODULE.name}-")}
TODAY = date.today()
NDC = "http://hl7.org/fhir/sid/ndc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _strengths_by_code() -> dict[tuple[str, str], set[float]]:
    """The capsule strengths each product or pack code gives (a pack: each product it holds)."""
    strength = {p.rxnorm: p.strength_mg for p in KNOWLEDGE.products}
    found: dict[tuple[str, str], set[float]] = {}
    for product in KNOWLEDGE.products:
        for system, code in [(RXNORM, product.rxnorm), *((NDC, ndc) for ndc in product.ndc)]:
            found[(system, normalise_code(system, code))] = {product.strength_mg}
    for pack in KNOWLEDGE.packs:
        strengths = {strength[code] for code, _ in pack.contents}
        for system, code in [(RXNORM, pack.rxnorm), *((NDC, ndc) for ndc in pack.ndc)]:
            found[(system, normalise_code(system, code))] = strengths
    return found


STRENGTHS = _strengths_by_code()
ALL_STRENGTHS = {product.strength_mg for product in KNOWLEDGE.products}


def _updates() -> list[tuple[str, str, dict[str, Any]]]:
    """(case id, card topic, suggested resource) of every update suggestion over the module's cases."""
    found = []
    for path in case_files(MODULE):
        scenario = load_scenario(path, TODAY)
        service = SERVICES[scenario.hook]
        request = build_request(scenario, service, fhir_server=None, prefetch=True, today=TODAY)
        try:
            cards = ENGINE.evaluate(service["id"], request, today=TODAY)["cards"]
        except Exception:  # noqa: BLE001 - a case the engine refuses has no suggestion to check
            continue
        for card in cards:
            for suggestion in card.get("suggestions") or []:
                for action in suggestion["actions"]:
                    if action["type"] == "update":
                        found.append((scenario.id, card_topic(card), action["resource"]))
    return found


UPDATES = _updates()


def _named_strengths(resource: dict[str, Any]) -> set[float] | None:
    for coding in (resource.get("medicationCodeableConcept") or {}).get("coding") or []:
        key = (coding.get("system"), normalise_code(coding.get("system"), coding.get("code")))
        if key in STRENGTHS:
            return STRENGTHS[key]
    return None


def test_there_are_titration_suggestions_to_check() -> None:
    assert sum(topic == "starting-dose" for _, topic, _ in UPDATES) >= 5
    assert len(UPDATES) >= 40


@pytest.mark.parametrize(("case", "topic", "resource"), UPDATES, ids=[f"{c}-{t}" for c, t, _ in UPDATES])
def test_every_suggested_phase_is_one_capsule_of_the_named_product(case: str, topic: str, resource: dict[str, Any]) -> None:
    strengths = _named_strengths(resource)
    doses = [d["doseAndRate"][0]["doseQuantity"]["value"] for d in resource["dosageInstruction"]]
    if strengths is None:
        # Only an order whose drug no code or name ties to a product may keep what it named.
        assert topic != "starting-dose", f"{case}: the titration names no product: {resource.get('medicationCodeableConcept')}"
        return
    for dose in doses:
        if dose in ALL_STRENGTHS:  # a capsule of this dose exists: it is the one named
            assert dose in strengths, f"{case}: phases {doses} mg from capsules of {sorted(strengths)} mg"
        else:  # no capsule of this dose (a 60 mg step): whole capsules of the one named
            assert any(dose % strength == 0 for strength in strengths), f"{case}: {dose} mg from {sorted(strengths)} mg"


def test_the_titration_names_the_pack_that_holds_it() -> None:
    titrations = [resource for _, topic, resource in UPDATES if topic == "starting-dose"]
    packs = {pack.rxnorm for pack in KNOWLEDGE.packs}
    assert all(any(c.get("code") in packs for c in resource["medicationCodeableConcept"]["coding"]) for resource in titrations)
    assert all("medicationReference" not in resource for resource in titrations)
