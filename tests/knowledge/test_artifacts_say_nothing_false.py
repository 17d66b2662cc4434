"""Issue 7, "also found": the artifacts of every built-in module say nothing false.

- A ValueSet concept carries a display only when the terminology verifies that display for that exact
  code: the display of the code's own rxnorm.csv row, or of a codes.csv cell that holds that one code
  alone. A cell of several codes, a range or a hierarchy shares one display that is true of none of its
  codes in particular ("Paroxysmal tachycardia" is not I47.10's display), so its codes carry none.
- A rule's quoted sentence supports it: a serotonergic co-medication rule quotes a sentence that speaks
  of serotonergic drugs, or it says that no sentence does and rests on a stated policy.

The terminology is read here straight from the CSV files (shared and the module's overlay), not through
the loader, so a loader that copies a row's display onto every code of the row is caught.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources
from pathlib import Path

import pytest

from fhir_module.fhir.bundle import build_resources
from fhir_module.knowledge import builtin_module_dirs, load_knowledge

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
MODULES = builtin_module_dirs()
MODULE_IDS = [folder.name for folder in MODULES]


def _rows(text: str) -> list[dict[str, str]]:
    return [{k: (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(text.splitlines())]


def _shared(name: str) -> str:
    return resources.files("fhir_module.data.terminology").joinpath(name).read_text("utf-8")


@cache
def verified_displays(folder: Path) -> dict[tuple[str, str], str]:
    """(system, code) -> the display verified for that very code, from the shared tables and the overlay."""
    displays: dict[tuple[str, str], str] = {}
    for where in ("shared", "overlay"):
        for name in ("rxnorm.csv", "codes.csv"):
            path = folder / "terminology" / name
            if where == "overlay" and not path.is_file():
                continue
            text = _shared(name) if where == "shared" else path.read_text("utf-8")
            for row in _rows(text):
                if name == "rxnorm.csv":
                    displays[(RXNORM, row["rxcui"])] = row["display"]
                elif len(row["code"].split()) == 1 and not row["code"].endswith(".x"):
                    displays[(row["system"], row["code"])] = row["display"]
    return displays


def _shared_cells(folder: Path) -> list[tuple[str, list[str], str]]:
    """codes.csv cells of several codes: (system, codes, the one display of the row)."""
    rows = _rows(_shared("codes.csv"))
    overlay = folder / "terminology" / "codes.csv"
    if overlay.is_file():
        rows += _rows(overlay.read_text("utf-8"))
    return [(row["system"], row["code"].split(), row["display"]) for row in rows if len(row["code"].split()) > 1]


def _concepts(folder: Path, version: str) -> list[tuple[str, str, dict]]:
    """(ValueSet id, system, concept) of every enumerated concept of the module's export."""
    return [(vs["id"], include["system"], concept)
            for vs in build_resources(load_knowledge(folder), version) if vs["resourceType"] == "ValueSet"
            for include in vs.get("compose", {}).get("include", [])
            for concept in include.get("concept", [])]


@pytest.mark.parametrize("version", ["R4", "R5"])
@pytest.mark.parametrize("folder", MODULES, ids=MODULE_IDS)
def test_a_concept_display_is_the_one_verified_for_that_code(folder: Path, version: str) -> None:
    verified = verified_displays(folder)
    concepts = _concepts(folder, version)
    wrong = [f"{vs_id}: {system}|{c['code']} displayed {c['display']!r}, verified: {verified.get((system, c['code']))!r}"
             for vs_id, system, c in concepts
             if "display" in c and verified.get((system, c["code"])) != c["display"]]
    assert wrong == []
    # Not vacuous: the module's value sets enumerate codes, and most carry their verified display.
    assert sum("display" in c for _, _, c in concepts) >= len(concepts) // 2 > 0


@pytest.mark.parametrize("folder", MODULES, ids=MODULE_IDS)
def test_no_code_of_a_several_code_cell_gets_the_cell_s_display(folder: Path) -> None:
    """E.g. the eight I47.x codes of 'Paroxysmal tachycardia', or I21.A1 of 'Acute myocardial infarction'."""
    shared_cells = {(system, code): display for system, codes, display in _shared_cells(folder) for code in codes}
    exported = [(vs_id, system, c) for vs_id, system, c in _concepts(folder, "R4") if (system, c["code"]) in shared_cells]
    copied = [f"{vs_id}: {system}|{c['code']} {c['display']!r}" for vs_id, system, c in exported
              if "display" in c and verified_displays(folder).get((system, c["code"])) != c["display"]]
    assert copied == []


def test_the_display_check_is_not_vacuous() -> None:
    """Codes of several-code cells are exported (so the check above has something to check)."""
    levo = next(folder for folder in MODULES if folder.name == "levomilnacipran")
    cells = {(system, code) for system, codes, _ in _shared_cells(levo) for code in codes}
    exported = {(system, c["code"]) for _, system, c in _concepts(levo, "R4")}
    assert {("http://hl7.org/fhir/sid/icd-10-cm", "I47.10"), ("http://hl7.org/fhir/sid/icd-10-cm", "I21.A1")} <= cells & exported


def _serotonergic_rules(folder: Path) -> list:
    return [rule for rule in load_knowledge(folder).rules if rule.topic == "serotonergic"]


@pytest.mark.parametrize("folder", MODULES, ids=MODULE_IDS)
def test_a_serotonergic_rule_quotes_a_sentence_about_serotonergic_drugs_or_states_its_policy(folder: Path) -> None:
    rules = _serotonergic_rules(folder)
    for rule in rules:
        if rule.quote is not None:
            assert "serotonergic" in rule.quote.sentence.text.lower(), (
                f"{folder.name} {rule.id} quotes {rule.quote.sentence.text!r}, which does not speak of serotonergic drugs")
        else:
            assert rule.policy and "serotonergic" in rule.policy.lower(), (rule.id, rule.policy)


def test_levomilnacipran_s_serotonergic_rule_is_a_stated_policy_said_on_its_card() -> None:
    """Its monograph has no sentence on serotonergic co-medication: the rule rests on the product decision,
    the PlanDefinition carries it as a justification, and the card prints it."""
    from fhir_module.engine import Engine
    from fhir_module.knowledge import builtin_module_dir
    from tests.support.scenarios import build_request, card_topic, load_scenario

    levo = builtin_module_dir("levomilnacipran")
    [rule] = _serotonergic_rules(levo)
    assert rule.quote is None and "No sentence of the monograph names serotonergic co-medication" in rule.policy
    plan = next(r for r in build_resources(load_knowledge(levo), "R4") if r["resourceType"] == "PlanDefinition")
    action = next(a for group in plan["action"] for kind in group.get("action", []) for a in [kind, *kind.get("action", [])]
                  if a.get("title") == rule.title)
    justification = [d for d in action["documentation"] if d["type"] == "justification"]
    assert [d["citation"] for d in justification] == [rule.policy]

    scenario = load_scenario(levo / "cases" / "public" / "pub-serotonergic-bleeding.json")
    engine = Engine.from_sources(modules=[levo])
    service = engine.service(f"levomilnacipran-{scenario.hook}")
    cards = engine.evaluate(service["id"], build_request(scenario, service, fhir_server=None, prefetch=True))["cards"]
    card = next(c for c in cards if card_topic(c) == "serotonergic")
    assert f"Policy:** {rule.policy}" in card["detail"]
