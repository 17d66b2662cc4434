"""Every clinical scenario (public and our own) run through the real engine, in process.

Each case of the levomilnacipran module (cases/public and cases/own) is sent the way an EHR sends it (discovery
document → prefetch filled from the chart → request) to ``Engine.default()`` with today's date, and the
cards must match the scenario's expectation (``compare_cards``). A second check holds every card to
the card contract of docs/clinical-rules.md ("What a card contains", the order-sign filter, one card
per problem per order, whole-capsule dose updates).

Engine failures that are known and not fixed yet are listed in ``KNOWN_ENGINE_FAILURES`` below; they
run as strict xfails, so a fix shows up as an XPASS that asks for the entry to be removed.
"""

from __future__ import annotations

import csv
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from fhir_module.engine import Engine
from fhir_module.knowledge import builtin_module_dir
from tests.support.scenarios import validation_errors, Scenario, build_request, card_topic, compare_cards, load_scenarios, module_services

# "<check>/<scenario id>" → why the engine is wrong (what the rules say, what the engine returns).
# check is "cards" (compare_cards) or "contract" (test_card_contract). Remove an entry once fixed.
KNOWN_ENGINE_FAILURES: dict[str, str] = {
}

_TESTS = Path(__file__).resolve().parent.parent
_CASES = builtin_module_dir("levomilnacipran") / "cases"
SCENARIO_FOLDERS = (_CASES / "public", _CASES / "own")
RXNORM_CSV = _TESTS.parent / "fhir_module" / "data" / "terminology" / "rxnorm.csv"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
TODAY = date.today()
INDICATORS = ("info", "warning", "critical")

_SCENARIOS: list[Scenario] = [s for folder in SCENARIO_FOLDERS for s in load_scenarios(folder, today=TODAY)]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.default()


@pytest.fixture(scope="module")
def services(engine: Engine) -> dict[str, dict[str, Any]]:
    return module_services(engine.services(), "levomilnacipran")


def _params(check: str) -> list[Any]:
    params = []
    for scenario in _SCENARIOS:
        reason = KNOWN_ENGINE_FAILURES.get(f"{check}/{scenario.id}")
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        params.append(pytest.param(scenario, id=scenario.id, marks=marks))
    return params


def _run(scenario: Scenario, engine: Engine, services: dict[str, dict[str, Any]]) -> dict[str, Any]:
    service = services[scenario.hook]
    request = build_request(scenario, service, fhir_server=None, prefetch=True, today=TODAY)
    return engine.evaluate(service["id"], request, today=TODAY)


def _describe(cards: list[dict[str, Any]]) -> str:
    return "; ".join(f"{card_topic(c)}/{c.get('indicator')}: {c.get('summary')!r}" for c in cards) or "no cards"


# -- the scenario expectations ----------------------------------------------------------------------


def test_scenario_ids_are_unique_and_prefixed() -> None:
    ids = [s.id for s in _SCENARIOS]
    assert len(ids) == len(set(ids)), "a scenario id is used twice across public/ and own/"
    own = [s for s in _SCENARIOS if s.source and s.source.parent.name == "own"]
    assert len(own) >= 45
    assert all(s.id.startswith("own-") and s.source.stem == s.id for s in own)


def test_known_failures_name_real_scenarios() -> None:
    ids = {s.id for s in _SCENARIOS}
    for key in KNOWN_ENGINE_FAILURES:
        check, _, scenario_id = key.partition("/")
        assert check in ("cards", "contract") and scenario_id in ids, key


@pytest.mark.parametrize("scenario", [pytest.param(s, id=s.id) for s in _SCENARIOS])
def test_scenario_resources_are_valid_fhir(scenario: Scenario) -> None:
    """A fixture is only evidence if an EHR could send it: every chart and draft resource is valid R4."""
    errors = validation_errors(scenario)
    assert not errors, errors


@pytest.mark.parametrize("scenario", _params("cards"))
def test_scenario_cards(scenario: Scenario, engine: Engine, services: dict[str, dict[str, Any]]) -> None:
    response = _run(scenario, engine, services)
    problems = compare_cards(scenario.expect, response)
    assert not problems, f"{scenario.id} ({scenario.description}): {problems}; got {_describe(response['cards'])}"


# -- the card contract ------------------------------------------------------------------------------


def _levomilnacipran_strengths() -> dict[str, float]:
    """RxNorm code → mg per capsule of each single-strength levomilnacipran product (from its display)."""
    strengths: dict[str, float] = {}
    with RXNORM_CSV.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["class"] == "levomilnacipran" and row["tty"] in ("SCD", "SBD"):
                match = re.search(r"(\d+(?:\.\d+)?) MG\b", row["display"])
                if match:
                    strengths[row["rxcui"]] = float(match.group(1))
    assert strengths, "no levomilnacipran products in rxnorm.csv"
    return strengths


STRENGTHS = _levomilnacipran_strengths()


def _medication_concept(resource: dict[str, Any], drafts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The CodeableConcept naming the medication of a MedicationRequest (inline, contained or in the drafts)."""
    if isinstance(resource.get("medicationCodeableConcept"), dict):
        return resource["medicationCodeableConcept"]
    reference = (resource.get("medicationReference") or {}).get("reference", "")
    if reference.startswith("#"):
        pool = resource.get("contained") or []
        wanted = ("Medication", reference[1:])
    else:
        pool = drafts
        wanted = tuple(reference.split("/", 1)) if "/" in reference else ("", "")
    for item in pool:
        if isinstance(item, dict) and (item.get("resourceType"), item.get("id")) == wanted:
            return item.get("code")
    return None


def _named_strength(concept: dict[str, Any] | None) -> float | None:
    """mg per capsule of the product a concept names: by a known product code, else '<n> mg' in its text."""
    if not isinstance(concept, dict):
        return None
    codings = [c for c in concept.get("coding") or [] if isinstance(c, dict)]
    for coding in codings:
        if coding.get("system") == RXNORM and coding.get("code") in STRENGTHS:
            return STRENGTHS[coding["code"]]
    if not codings and isinstance(concept.get("text"), str):
        found = {float(n) for n in re.findall(r"\b(\d+(?:\.\d+)?)\s*mg\b", concept["text"], re.IGNORECASE)}
        if len(found) == 1:
            return found.pop()
    return None


def _dose_per_administration_mg(resource: dict[str, Any]) -> float | None:
    dosage = (resource.get("dosageInstruction") or [{}])[0]
    quantity = ((dosage.get("doseAndRate") or [{}])[0]).get("doseQuantity") or {}
    if (quantity.get("code") or quantity.get("unit")) == "mg" and isinstance(quantity.get("value"), (int, float)):
        return float(quantity["value"])
    return None


def _checked_orders(scenario: Scenario) -> list[str]:
    if scenario.hook == "order-select":
        return list(scenario.selections)
    return [f"{d['resourceType']}/{d['id']}" for d in scenario.draft_orders if d["resourceType"] == "MedicationRequest"]


def _contract_problems(scenario: Scenario, cards: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    drafts = {f"{d['resourceType']}/{d['id']}": d for d in scenario.draft_orders}
    uuids = [c.get("uuid") for c in cards]
    if len(set(uuids)) != len(uuids):
        problems.append(f"card uuids are not distinct: {uuids}")
    for card in cards:
        label = f"{card_topic(card)}/{card.get('indicator')}"
        summary = card.get("summary")
        if not isinstance(summary, str) or not summary or len(summary) >= 140:
            problems.append(f"{label}: summary must be under 140 characters: {summary!r}")
        if not isinstance(card.get("detail"), str) or not card["detail"].strip():
            problems.append(f"{label}: no detail")
        if not isinstance(card.get("uuid"), str) or not card["uuid"]:
            problems.append(f"{label}: no uuid")
        indicator = card.get("indicator")
        if indicator not in INDICATORS:
            problems.append(f"{label}: indicator {indicator!r}")
        if scenario.hook == "order-sign" and indicator == "info":
            problems.append(f"{label}: order-sign returns only critical and warning cards")
        source = card.get("source") or {}
        topic = source.get("topic") or {}
        if not source.get("label") or not source.get("url") or not topic.get("system") or not topic.get("code"):
            problems.append(f"{label}: source needs label, url and a topic Coding")
        links = [link for link in card.get("links") or [] if isinstance(link, dict)]
        if not any(link.get("type") == "absolute" and link.get("url") for link in links):
            problems.append(f"{label}: no absolute link to the monograph")
        if indicator in ("critical", "warning"):
            reasons = card.get("overrideReasons") or []
            if not reasons or not all(isinstance(r, dict) and r.get("display") for r in reasons):
                problems.append(f"{label}: critical/warning cards carry overrideReasons with a display")
        suggestions = card.get("suggestions") or []
        if suggestions and card.get("selectionBehavior") != "at-most-one":
            problems.append(f"{label}: cards with suggestions use selectionBehavior at-most-one")
        for suggestion in suggestions:
            for action in suggestion.get("actions") or []:
                problems += _action_problems(label, action, drafts)
    if len(_checked_orders(scenario)) == 1:
        topics = [card_topic(c) for c in cards]
        repeated = sorted({t for t in topics if topics.count(t) > 1})
        if repeated:
            problems.append(f"one card per problem per order, but topics repeat: {repeated}")
    return problems


def _action_problems(label: str, action: dict[str, Any], drafts: dict[str, dict[str, Any]]) -> list[str]:
    kind = action.get("type")
    if kind == "delete":
        # CDS Hooks 2.0: resourceId is one relative reference (a string), the resource to delete.
        target = action.get("resourceId")
        if not isinstance(target, str):
            return [f"{label}: delete resourceId {target!r} is not a relative reference string"]
        return [] if target in drafts else [f"{label}: delete of {target}, which is not a draft order"]
    if kind != "update":
        return [f"{label}: action type {kind!r}"]
    resource = action.get("resource") or {}
    ref = f"{resource.get('resourceType')}/{resource.get('id')}"
    if ref not in drafts:
        return [f"{label}: update of {ref}, which is not a draft order (same id expected)"]
    strength = _named_strength(_medication_concept(resource, list(drafts.values())))
    dose = _dose_per_administration_mg(resource)
    # Capsules are not split: the dose is one capsule of the product named, or whole capsules of it
    # when no product has the dose's strength (60 mg as three 20 mg capsules).
    if strength is not None and dose is not None and abs(dose / strength - round(dose / strength)) > 1e-6:
        return [f"{label}: update gives {dose:g} mg per dose but names a {strength:g} mg product "
                f"(capsules are not split: name a product whose capsules make the dose)"]
    return []


@pytest.mark.parametrize("scenario", _params("contract"))
def test_card_contract(scenario: Scenario, engine: Engine, services: dict[str, dict[str, Any]]) -> None:
    cards = _run(scenario, engine, services)["cards"]
    problems = _contract_problems(scenario, cards)
    assert not problems, f"{scenario.id}: {problems}"


def test_drafted_maoi_and_levomilnacipran_give_one_card_with_both_deletes(
    engine: Engine, services: dict[str, dict[str, Any]]
) -> None:
    """clinical-rules.md: drafted together → one critical card, two at-most-one delete suggestions."""
    together = ("own-maoi-levo-drafted-together", "own-maoi-drafted-unselected", "own-i2-levo-drafted-unselected")
    for scenario_id in together:
        scenario = next(s for s in _SCENARIOS if s.id == scenario_id)
        cards = [c for c in _run(scenario, engine, services)["cards"] if card_topic(c) == "maoi-washout"]
        assert len(cards) == 1, _describe(cards)
        deleted = {
            action.get("resourceId")
            for suggestion in cards[0].get("suggestions") or []
            for action in suggestion.get("actions") or []
            if action.get("type") == "delete"
        }
        expected = {f"MedicationRequest/{d['id']}" for d in scenario.draft_orders}
        assert deleted == expected, f"{scenario_id}: deletes {deleted}, expected {expected}"
        assert cards[0].get("selectionBehavior") == "at-most-one"


def test_dose_frequency_has_no_suggestion_of_its_own_beside_a_dose_limit(
    engine: Engine, services: dict[str, dict[str, Any]]
) -> None:
    """clinical-rules.md D4: no suggestion of its own when a dose-limit card fires."""
    scenario = next(s for s in _SCENARIOS if s.id == "own-dose-freq2-limit")
    cards = {card_topic(c): c for c in _run(scenario, engine, services)["cards"]}
    assert "dose-limit" in cards and "dose-frequency" in cards, _describe(list(cards.values()))
    assert not cards["dose-frequency"].get("suggestions")


def test_merged_dose_limit_names_every_cause(engine: Engine, services: dict[str, dict[str, Any]]) -> None:
    """clinical-rules.md: the merged card's summary names the lowest limit, the detail every limit."""
    scenario = next(s for s in _SCENARIOS if s.id == "own-multi-limit")
    cards = [c for c in _run(scenario, engine, services)["cards"] if card_topic(c) == "dose-limit"]
    assert len(cards) == 1
    assert "80 mg" in cards[0]["summary"]
    detail = cards[0]["detail"]
    for fragment in ("120 mg", "45 mL/min", "clarithromycin"):
        assert fragment in detail, f"{fragment!r} missing from the merged detail: {detail}"


def test_recognised_by_name_is_said(engine: Engine, services: dict[str, dict[str, Any]]) -> None:
    """clinical-rules.md: an order recognised by its text says so in the card."""
    scenario = next(s for s in _SCENARIOS if s.id == "own-text-fetzima")
    cards = _run(scenario, engine, services)["cards"]
    assert cards and all("name" in c["detail"].lower() and "Fetzima" in c["detail"] for c in cards), _describe(cards)


def test_an_unreadable_dose_is_said_on_every_card(engine: Engine, services: dict[str, dict[str, Any]]) -> None:
    """clinical-rules.md, bad numbers: every card that fires says the dose could not be checked."""
    scenario = next(s for s in _SCENARIOS if s.id == "own-no-dosage-maoi")
    cards = _run(scenario, engine, services)["cards"]
    assert cards, "the scenario's maoi-washout card should fire"
    for card in cards:
        detail = card["detail"].lower()
        assert "dose" in detail and "not" in detail, f"{card_topic(card)} detail does not mention the dose: {detail}"


def test_a_missing_birth_date_is_not_said_on_a_card_that_needs_no_age(
    engine: Engine, services: dict[str, dict[str, Any]]
) -> None:
    """Issue 12: a missing-data note goes only on the cards whose rules needed that data (the MAOI
    washout rule reads no age)."""
    scenario = next(s for s in _SCENARIOS if s.id == "own-no-birthdate-maoi")
    cards = _run(scenario, engine, services)["cards"]
    assert [card_topic(c) for c in cards] == ["maoi-washout"]
    assert "Age unknown" not in cards[0]["detail"]
