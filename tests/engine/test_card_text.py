"""Cards a prescriber reads in two seconds (issue 12): plain clinical language first, one fact per
line, the chart records under their own heading, summaries whole words under 140 characters."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from fhir_module.engine import Engine
from fhir_module.engine.cards import SUMMARY_LIMIT, truncate
from fhir_module.knowledge import builtin_module_dirs, case_files
from tests.support.scenarios import build_request, card_topic, load_scenario

ENGINE = Engine.default()
TODAY = date.today()
FHIR_ID = re.compile(r"\b(?:Observation|MedicationRequest|MedicationStatement|Condition|AllergyIntolerance|Patient|Medication)/[\w.\-]+")
# FHIR element names and engine arithmetic that a clinician should not have to read.
JARGON = re.compile(r"timing \d|per administration|effectivePeriod|authoredOn|boundsPeriod|lastUpdated|validityPeriod|doseQuantity")


def _cards() -> list[tuple[str, dict[str, Any]]]:
    """Every card of every built-in module's cases, each case sent to every service of its hook
    (as an EHR calls them all)."""
    found = []
    for module in builtin_module_dirs():
        for path in case_files(module):
            scenario = load_scenario(path, TODAY)
            for service in ENGINE.services():
                if service["hook"] != scenario.hook:
                    continue
                request = build_request(scenario, service, fhir_server=None, prefetch=True, today=TODAY)
                found += [(scenario.id, card) for card in ENGINE.evaluate(service["id"], request, today=TODAY)["cards"]]
    return found


CARDS = _cards()


def _first_section(card: dict[str, Any]) -> str:
    """What a clinician reads first: the facts, before the rule, quotes, notes and evidence."""
    return card["detail"].split("\n\n**")[0]


def test_there_are_many_cards_to_read() -> None:
    assert len(CARDS) > 200


def test_the_text_shown_first_names_no_fhir_ids_and_no_fhir_jargon() -> None:
    problems = [(case, card_topic(card), text) for case, card in CARDS
                for text in (card["summary"], _first_section(card))
                if FHIR_ID.search(text) or JARGON.search(text)]
    assert not problems, problems[:5]


def test_the_facts_come_one_per_line() -> None:
    problems = [(case, card_topic(card), line) for case, card in CARDS if card_topic(card) != "not-evaluated"
                for line in _first_section(card).splitlines() if not re.match(r"\s*- ", line)]
    assert not problems, problems[:5]


def test_no_line_ends_in_blanks_or_stands_empty() -> None:
    problems = [(case, card_topic(card), line) for case, card in CARDS for line in card["detail"].splitlines()
                if line != line.rstrip() or line.strip() in ("-", "- :")]
    assert not problems, problems[:5]


def _card(case: str, topic: str) -> dict[str, Any]:
    return next(card for c, card in CARDS if c == case and card_topic(card) == topic)


@pytest.mark.parametrize(("case", "topic", "says"), [
    ("ehr-condition-provisional-stroke", "stroke-history", "(provisional diagnosis, not confirmed)"),
    ("ehr-condition-differential-mi", "recent-mi", ", differential diagnosis, not confirmed)"),
    ("ehr-condition-unconfirmed-hepatic-failure", "hepatic-impairment", "(diagnosis not confirmed)"),
    ("ehr-allergy-unconfirmed-fetzima-text", "hypersensitivity", "(not confirmed)"),
    ("own-d-unconfirmed-tachy-provisional", "uncontrolled-tachyarrhythmia", "; provisional diagnosis, not confirmed)"),
    ("own-d-unconfirmed-htn-differential", "uncontrolled-hypertension", "; differential diagnosis, not confirmed)"),
])
def test_a_contraindication_on_an_unconfirmed_diagnosis_says_so_once_in_its_summary(case: str, topic: str, says: str) -> None:
    summary = _card(case, topic)["summary"]
    assert says in summary and summary.count("confirmed") == 1, summary


def test_a_status_coded_locally_first_is_shown_as_the_status_it_is() -> None:
    facts = _first_section(_card("ehr-condition-status-local-coding-first", "esrd"))
    assert "N18.6, active" in facts, facts


@pytest.mark.parametrize(("case", "topic", "says", "not_says"), [
    ("ehr-birthdate-year-month-child", "pediatric", "- Age 11 (birth date 2015-06 is partial)\n", "(birth date 2015-06)"),
    ("own-pediatric-16-sign", "pediatric", "- Age 16 (birth date ", "partial"),
    ("own-d-route-local-display-subcutaneous", "route", "other than oral (Subcutaneous)", "R22"),
    ("ehr-tachy-encounter-diagnosis-icd", "uncontrolled-tachyarrhythmia", "Heart rate 128/min on", "128 /min"),
    ("ehr-pregnancy-status-text-value", "pregnancy-lactation", "Pregnancy status: Pregnant on", "status Pregnant"),
    ("ehr-egfr-comparator-below-15", "esrd", "eGFR <15 mL/min/1.73 m² on", "{1.73_m2}"),
])
def test_facts_read_as_a_clinician_writes_them(case: str, topic: str, says: str, not_says: str) -> None:
    card = _card(case, topic)
    text = card["summary"] + "\n" + _first_section(card) + "\n"
    assert says in text and not_says not in text, text


def test_the_chart_records_follow_under_their_heading() -> None:
    with_records = [(case, card) for case, card in CARDS if "**Evidence**" in card["detail"]]
    assert len(with_records) > 150
    for case, card in with_records:
        evidence = card["detail"].split("**Evidence**", 1)[1]
        assert FHIR_ID.search(evidence), f"{case}: {evidence}"
        assert card["detail"].rstrip().endswith(evidence.rstrip()), "the evidence comes last"


@pytest.mark.parametrize(("case", "topic", "records"), [
    ("own-d-cg-exactly-15-severe", "dose-limit", ["Observation/own-d-cg-exactly-15-severe-scr",
                                                 "Observation/own-d-cg-exactly-15-severe-wt",
                                                 "Patient/own-d-cg-exactly-15-severe"]),
    ("own-d-note-renal-esrd-condition", "esrd", ["Condition/own-d-note-renal-esrd-condition-esrd"]),
    ("own-d-sex-absent-maoi", "maoi-washout", ["MedicationRequest/own-d-sex-absent-maoi-mao"]),
])
def test_a_card_lists_the_records_its_facts_come_from(case: str, topic: str, records: list[str]) -> None:
    card = next(card for c, card in CARDS if c == case and card_topic(card) == topic)
    evidence = card["detail"].split("**Evidence**", 1)[1]
    assert all(record in evidence for record in records), evidence


def test_every_summary_is_under_the_limit() -> None:
    assert all(len(card["summary"]) < SUMMARY_LIMIT for _, card in CARDS)


def test_a_long_summary_is_cut_between_words() -> None:
    words = ["serotonergic", "sertraline", "tramadol", "duloxetine", "amitriptyline"] * 8
    text = "Levomilnacipran with " + " ".join(words)
    cut = truncate(text)
    assert len(cut) < SUMMARY_LIMIT and cut.endswith("…")
    kept = cut[:-1].split()
    assert all(word in words or word in ("Levomilnacipran", "with") for word in kept), cut
    assert truncate("short summary") == "short summary"
