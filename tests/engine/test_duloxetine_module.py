"""The duloxetine module (the second built-in module) as its product decision describes it: every
row of its rules table has a case that fires it, what has no verified code is recognised by name and
said so, and a suggested dose names a capsule of the kind ordered."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest

from fhir_module.engine import Engine
from fhir_module.fhir.bundle import build_resources
from fhir_module.knowledge import builtin_module_dir, builtin_module_dirs, case_files, load_knowledge
from tests.support.scenarios import build_request, load_scenario

DUL = builtin_module_dir("duloxetine")
KNOWLEDGE = load_knowledge(DUL)
ENGINE = Engine.default()
TODAY = date.today()
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
MAX_DOSE = load_scenario(DUL / "cases" / "dul-d1-max-160.json", TODAY)
PRODUCTS = {p.rxnorm: p for p in KNOWLEDGE.products}


@pytest.mark.parametrize("module", builtin_module_dirs(), ids=lambda folder: folder.name)
def test_every_topic_of_a_built_in_module_is_expected_by_one_of_its_cases(module: Any) -> None:
    """Each row of the rules table fires in at least one case (and each case names its expectations)."""
    topics = {code for code, _ in load_knowledge(module).topics}
    expected = {card["topic"] for path in case_files(module)
                for card in load_scenario(path, TODAY).expect.get("cards", [])}
    assert topics <= expected, f"topics no case expects: {sorted(topics - expected)}"


def test_every_rule_of_the_table_is_in_the_module() -> None:
    rules = {rule.id for rule in KNOWLEDGE.rules}
    assert {"D1", "D2", "D5", "R3", "H1", "H2", "C2", "I1", "I2", "I3", "I4", "I5", "A1", "P1", "P2", "P3", "P5"} <= rules


def test_what_has_no_verified_code_is_recognised_by_name_and_said_in_the_manifest() -> None:
    resources = build_resources(KNOWLEDGE, "R4")
    library = next(r for r in resources if r["resourceType"] == "Library")
    for said in ("alcohol use disorder", "chronic liver disease", "ciprofloxacin", "enoxacin"):
        assert said in library["usage"]
    alcohol = next(r for r in resources if r["resourceType"] == "ValueSet" and r["id"].endswith("alcohol-use-disorder"))
    assert "compose" not in alcohol and alcohol["expansion"]["total"] == 0
    assert "alcohol use disorder" in [e["valueString"] for e in alcohol["extension"]]
    cyp1a2 = next(r for r in resources if r["resourceType"] == "ValueSet" and r["id"].endswith("cyp1a2-inhibitor"))
    names = [e["valueString"] for e in cyp1a2["extension"]]
    assert {"ciprofloxacin", "enoxacin"} <= set(names)
    # fluvoxamine has verified codes; ciprofloxacin and enoxacin none (no code from memory).
    coded = {c["display"].lower() for include in cyp1a2["compose"]["include"] for c in include.get("concept", [])
             if c.get("display")}
    assert any("fluvoxamine" in display for display in coded)
    assert not any("ciprofloxacin" in display or "enoxacin" in display for display in coded)


def _suggested_code(ordered: str, dose_mg: float = 160) -> tuple[str, str]:
    """The product the dose-limit suggestion names for an order of `ordered` at `dose_mg` mg/day."""
    scenario = copy.deepcopy(MAX_DOSE)
    draft = scenario.draft_orders[0]
    draft["medicationCodeableConcept"] = {"coding": [{"system": RXNORM, "code": ordered, "display": PRODUCTS[ordered].display}],
                                          "text": PRODUCTS[ordered].display} if ordered in PRODUCTS else {"text": ordered}
    draft["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = dose_mg
    service = ENGINE.service(f"duloxetine-{scenario.hook}")
    cards = ENGINE.evaluate(service["id"], build_request(scenario, service, fhir_server=None, prefetch=True, today=TODAY),
                            today=TODAY)["cards"]
    (card,) = cards
    coding = card["suggestions"][0]["actions"][0]["resource"]["medicationCodeableConcept"]["coding"][0]
    return coding["code"], coding["display"]


def test_a_suggested_dose_names_a_capsule_of_the_kind_ordered() -> None:
    """120 mg is two 60 mg capsules: of the plain capsule when a plain one was ordered, of the
    sprinkle capsule when a sprinkle one was (the module lists both kinds, of the same strengths)."""
    plain = {code for code, p in PRODUCTS.items() if not p.display.lower().startswith("sprinkle")}
    sprinkle = set(PRODUCTS) - plain
    assert plain and sprinkle
    for ordered in plain:
        code, display = _suggested_code(ordered)
        assert code in plain and PRODUCTS[code].strength_mg == 60, (ordered, display)
    for ordered in sprinkle:
        code, display = _suggested_code(ordered)
        assert code in sprinkle and PRODUCTS[code].strength_mg == 60, (ordered, display)
    # An order in text only: the product its words describe best (the plain capsule).
    code, _ = _suggested_code("duloxetine 20 mg delayed release capsule")
    assert code in plain


def test_the_two_built_in_modules_share_no_id_and_no_canonical_url() -> None:
    """Loaded into one FHIR server side by side, neither module's artifact overwrites the other's."""
    levo = build_resources(load_knowledge(builtin_module_dir("levomilnacipran")), "R4")
    dul = build_resources(KNOWLEDGE, "R4")
    keys = [{(r["resourceType"], r["id"]) for r in resources} for resources in (levo, dul)]
    urls = [{r["url"] for r in resources if "url" in r} for resources in (levo, dul)]
    assert keys[0] and keys[1] and not keys[0] & keys[1]
    assert urls[0] and urls[1] and not urls[0] & urls[1]
    assert all(resource_id.startswith("duloxetine") for _, resource_id in keys[1])
