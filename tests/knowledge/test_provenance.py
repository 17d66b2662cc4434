"""Provenance is checked, not claimed: a knowledge file that drifts from its monograph or terminology fails."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from fhir_module.knowledge import KnowledgeError, build_knowledge, builtin_module_dir, load_knowledge

LEVO = builtin_module_dir("levomilnacipran")
MONOGRAPH = (LEVO / "levomilnacipran.md").read_text(encoding="utf-8")
DATA = yaml.safe_load((LEVO / "knowledge.yaml").read_text(encoding="utf-8"))


def _data() -> dict[str, Any]:
    return copy.deepcopy(DATA)


def _rule(data: dict[str, Any], rule_id: str) -> dict[str, Any]:
    return next(rule for rule in data["rules"] if rule["id"] == rule_id)


def test_the_packaged_knowledge_loads_with_every_rule_quoted() -> None:
    knowledge = load_knowledge(LEVO)
    assert {rule.id for rule in knowledge.rules} >= {
        "D1", "D2", "D3", "D4", "D5", "R1", "R2", "R3", "C1", "I1", "I2", "I3", "I4", "I5",
        "A1", "K1", "K2", "K3", "K4", "P1", "P2", "P3", "P4", "P5", "F1"}
    for rule in knowledge.rules:
        assert rule.quote or rule.policy, rule.id
        for quote in rule.quotes:
            assert quote.sentence.text in knowledge.monograph.section(quote.section).sentences[
                int(quote.sentence.id.rsplit(".", 1)[1]) - 1].text
    # Issue 7: rules that no monograph sentence states rest on a policy, not on a quote that does not fit.
    assert {rule.id for rule in knowledge.rules if rule.policy} == {"I3", "I5"}
    assert all(rule.quote is None for rule in knowledge.rules if rule.policy)


def test_a_changed_maximum_in_the_monograph_breaks_the_build() -> None:
    edited = MONOGRAPH.replace("up to a maximum of 120 mg once daily", "up to a maximum of 150 mg once daily")
    with pytest.raises(KnowledgeError, match="not in the monograph"):
        build_knowledge(_data(), monograph_text=edited, folder=LEVO)


def test_a_removed_sentence_breaks_the_build() -> None:
    edited = MONOGRAPH.replace(
        "Levomilnacipran is generally not recommended for use in patients with end-stage renal disease (ESRD).", "")
    with pytest.raises(KnowledgeError, match="not in the monograph"):
        build_knowledge(_data(), monograph_text=edited, folder=LEVO)


def test_a_monograph_number_absent_from_its_quote_breaks_the_build() -> None:
    data = _data()
    _rule(data, "R1")["parameters"]["limit"]["value"] = 60
    with pytest.raises(KnowledgeError, match="number 60 is not in its quoted sentence"):
        build_knowledge(data, monograph_text=MONOGRAPH, folder=LEVO)


def test_a_policy_number_needs_a_reason() -> None:
    data = _data()
    del _rule(data, "K1")["parameters"]["withinDays"]["why"]
    with pytest.raises(KnowledgeError, match="why"):
        build_knowledge(data, monograph_text=MONOGRAPH, folder=LEVO)


def test_numbers_cannot_hide_in_expressions() -> None:
    data = _data()
    _rule(data, "D1")["condition"] = "%dose.mgPerDay > 100"
    with pytest.raises(KnowledgeError, match="numeric literal 100"):
        build_knowledge(data, monograph_text=MONOGRAPH, folder=LEVO)


def test_an_unknown_value_set_in_an_expression_is_caught() -> None:
    data = _data()
    _rule(data, "I3")["variables"]["serotonergic"] = "therapies('serotonin-drugs')"
    with pytest.raises(KnowledgeError, match="unknown value set 'serotonin-drugs'"):
        build_knowledge(data, monograph_text=MONOGRAPH, folder=LEVO)


def test_codes_must_come_from_the_terminology() -> None:
    data = _data()
    vs = next(v for v in data["valuesets"] if v["id"] == "hepatic-failure")
    vs["codes"] = ["59927004", "K72.99"]
    with pytest.raises(KnowledgeError, match="not in codes.csv"):
        build_knowledge(data, monograph_text=MONOGRAPH, folder=LEVO)


def test_a_product_strength_must_agree_with_its_rxnorm_name() -> None:
    data = _data()
    data["drug"]["products"][0]["strength_mg"] = 25
    with pytest.raises(KnowledgeError, match="not 25 mg"):
        build_knowledge(data, monograph_text=MONOGRAPH, folder=LEVO)


def test_schema_errors_name_the_place() -> None:
    data = _data()
    _rule(data, "D1")["indicator"] = "loud"
    with pytest.raises(KnowledgeError, match=r"rules\[0\]\.indicator"):
        build_knowledge(data, monograph_text=MONOGRAPH, folder=LEVO)


def test_a_bare_boolean_filter_is_refused() -> None:
    # fhirpathpy 2.x keeps items whose flag is false in `where(flag)`: such a rule would fire wrongly.
    data = _data()
    _rule(data, "I1")["involves"] = "%recentMaoi.where(draft).id"
    with pytest.raises(KnowledgeError, match="bare property"):
        build_knowledge(data, monograph_text=MONOGRAPH, folder=LEVO)
