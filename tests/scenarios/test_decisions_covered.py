"""Every decision of the second review (docs/clinical-rules.md, "Decisions on questions the rules left
open") names the module cases that test it (issue 9, "done when").

Cases in the module's cases/own and cases/ehr run through the engine in process
(tests/engine/test_own_scenarios.py, test_ehr_scenarios.py) and over HTTP in both modes, prefetch
filled and no prefetch with the chart on the FHIR test server (test_scenarios_http.py). This map is
what says which of them stand for which decision; it fails when a named case goes away, stops being run
in both modes, is marked as a known failure, or a decision loses its cases.

Not a case, and why:
- Unreadable doses (not valid R4, so not scenario files) are tested in both modes by
  test_unreadable_doses.py, which breaks the draft of own-d-bad-dose-base.
- "meta.lastUpdated only when neither date exists" is tested in process only
  (tests/engine/clinical/test_clinical_timeline.py): the FHIR test server rewrites meta.lastUpdated on
  every write, as FHIR servers do, so a fetched chart cannot keep it.
"""

from __future__ import annotations

from datetime import date

import pytest

from fhir_module.knowledge import builtin_module_dir
from tests.engine.test_ehr_scenarios import KNOWN_ENGINE_FAILURES as EHR_KNOWN
from tests.engine.test_own_scenarios import KNOWN_ENGINE_FAILURES as OWN_KNOWN
from tests.scenarios.test_unreadable_doses import BROKEN
from tests.support.scenarios import Scenario, load_scenarios

CASES = builtin_module_dir("levomilnacipran") / "cases"
TODAY = date.today()
# own/ and ehr/ run in process and over HTTP in both modes (see the module docstring).
RUN_IN_BOTH_MODES: dict[str, Scenario] = {s.id: s for folder in ("own", "ehr") for s in load_scenarios(CASES / folder, TODAY)}

DECISIONS: dict[str, list[str]] = {
    "Codes of the drug (NDC in the drug's value set, every rule, I2 included)": [
        "own-d-ndc-draft-capsules-160", "own-d-ndc-statement-maoi-order", "own-d-ndc11-statement-maoi-order",
        "own-d-ndc11-plain-statement-maoi-order", "ehr-ndc-only-capsules"],
    "Names (St./St/Saint, hyphens and apostrophes, brand names)": [
        "own-d-name-saint-johns-wort", "own-d-name-st-johns-wort-hyphens", "own-d-name-brand-parnate",
        "own-d-name-brand-ultram"],
    "Coded answers (by code, then text or display)": [
        "own-d-pregnancy-loinc-answer", "own-d-pregnancy-local-code-text", "own-d-pregnancy-local-code-not-pregnant",
        "ehr-pregnancy-status-text-value", "ehr-pregnancy-status-text-negative"],
    "Exact thresholds (15.0 is severe, not ESRD; 60 is not moderate; one decimal)": [
        "own-d-cg-exactly-15-severe", "own-d-cg-exactly-15-40mg", "own-d-cg-exactly-30-moderate",
        "own-d-cg-exactly-60-not-moderate", "own-d-cg-exactly-60-male"],
    "Sex unknown (no Cockcroft-Gault; eGFR proxy if present; never the female factor)": [
        "own-d-sex-absent-maoi", "own-d-sex-other-no-renal", "own-d-sex-unknown-egfr-proxy", "ehr-gender-unknown-cg"],
    "Route (SNOMED oral, v2-0162 PO, text; unreadable is not non-oral)": [
        "own-d-route-v2-po-code-only", "own-d-route-v2-po-by-mouth", "own-d-route-text-po", "own-d-route-text-by-mouth",
        "own-d-route-text-oral-or-iv", "own-d-route-unreadable-local", "own-d-route-v2-iv-code-only",
        "own-d-route-local-display-subcutaneous"],
    "Dose ranges (upper bound, said)": [
        "own-d-dose-range-upper-160", "own-d-dose-range-upper-within", "ehr-dose-range"],
    "Phased orders (limits the largest phase, D2 the first; open last phase is current)": [
        "own-d-phased-largest-phase-160", "own-d-phased-new-start-renal-largest-phase",
        "own-d-phased-first-phase-20-new-start", "own-d-phased-first-phase-40-new-start",
        "own-d-phased-maoi-last-phase-open", "own-d-phased-maoi-last-phase-ended-20d"],
    "Ended without an end date (authoredOn, effectivePeriod.start, then meta.lastUpdated)": [
        "own-d-stopped-request-authored-first", "own-d-stopped-statement-start-over-last-updated"],
    "Which renal result (newest within 12 months; same-day ties CrCl, Cockcroft-Gault, eGFR; CG dated by creatinine)": [
        "own-d-renal-newest-cg-over-older-crcl", "own-d-renal-same-day-crcl-over-egfr",
        "own-d-renal-same-day-cg-over-egfr", "own-d-cg-weight-older-than-12-months"],
    "Result status and units (preliminary counts and is said; registered, cancelled never; no unit, not used)": [
        "own-d-crcl-preliminary", "own-d-crcl-registered", "ehr-crcl-amended-and-cancelled",
        "own-d-renal-unitless-creatinine"],
    "Pregnancy window (a status 280 days; a condition while active)": [
        "own-d-pregnancy-status-280d", "own-d-pregnancy-status-281d", "own-pregnancy-condition", "own-pregnancy-resolved"],
    "Duplicates (no I5 on derivedFrom/basedOn the replaced order; D3 still checked)": [
        "own-d-duplicate-statement-basedon-replaced", "own-d-duplicate-statement-derivedfrom-replaced",
        "own-d-duplicate-statement-unrelated"],
    "Partial birth dates (an age range; fire only when every age meets the rule, said)": [
        "own-d-birth-year-17", "own-d-birth-year-18", "own-d-birth-year-19", "own-d-birth-year-25",
        "own-d-birth-year-66", "own-d-birth-month-18", "ehr-birthdate-year-month-child"],
    "Bad numbers (no dose card, every card says so, an info card when nothing else fires)": [
        "own-d-bad-dose-base", "own-d-bad-dose-local-q12hr-maoi", "own-no-dosage", "own-no-dosage-maoi"],
    "Known terminology gaps (hemorrhagic stroke, hypertensive heart and kidney disease by name)": [
        "own-d-gap-hemorrhagic-stroke-name", "own-d-gap-hypertensive-heart-disease", "own-d-gap-traumatic-sah-no-stroke"],
    "A contraindication on an unconfirmed diagnosis says so in its summary (issue 12)": [
        "own-d-unconfirmed-stroke-provisional", "own-d-unconfirmed-mi-differential", "own-d-unconfirmed-allergy",
        "own-d-unconfirmed-stroke-one-confirmed", "own-d-unconfirmed-tachy-provisional", "own-d-unconfirmed-htn-differential",
        "ehr-condition-unconfirmed-hepatic-failure"],
}


@pytest.mark.parametrize("decision", DECISIONS)
def test_each_decision_has_cases_run_in_both_modes(decision: str) -> None:
    cases = DECISIONS[decision]
    assert len(cases) >= 2, f"{decision}: one case is no edge"
    missing = [case for case in cases if case not in RUN_IN_BOTH_MODES]
    assert not missing, f"{decision}: not cases of own/ or ehr/: {missing}"
    known = [case for case in cases if case in {**OWN_KNOWN, **EHR_KNOWN}]
    assert not known, f"{decision}: marked as known engine failures: {known}"


@pytest.mark.parametrize("decision", DECISIONS)
def test_each_decision_has_a_case_where_a_card_fires_and_one_that_forbids_false_alarms(decision: str) -> None:
    """An edge has two sides: a decision tested only by silence (or only by alarms) is half tested."""
    expects = [RUN_IN_BOTH_MODES[case].expect for case in DECISIONS[decision]]
    assert any(expect.get("cards") for expect in expects), f"{decision}: no case where a card fires"
    assert any(expect.get("noOtherCards") for expect in expects), f"{decision}: no case that forbids other cards"


def test_unreadable_doses_are_tested_in_both_modes() -> None:
    assert "own-d-bad-dose-base" in RUN_IN_BOTH_MODES
    assert len(BROKEN) >= 5
