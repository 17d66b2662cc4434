"""A therapy's daily dose is worked out when a rule reads it, not for every therapy of a class:
`therapies('x').where(current or draft)` over a long chart of ended prescriptions computes no dose.
Whoever reads the dose, or the fact whole, sees exactly the fact with its dose."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal

from fhir_module.engine import Engine
from fhir_module.engine.chart import Chart
from fhir_module.engine.expressions import compiled, current_facts
from fhir_module.engine.facts import ChartFacts

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
TODAY = date(2026, 11, 26)
BLEEDING = "levomilnacipran-bleeding-risk"
KB = Engine.default().kb


def _order(rid: str, code: str, status: str, mg: float, end: str | None = None) -> dict:
    repeat: dict = {"frequency": 1, "period": 1, "periodUnit": "d"}
    if end:
        repeat["boundsPeriod"] = {"start": "2025-01-01", "end": end}
    return {"resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
            "subject": {"reference": "Patient/p1"}, "authoredOn": "2025-01-01",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code}]},
            "dosageInstruction": [{"timing": {"repeat": repeat},
                                   "doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg", "code": "mg"}}]}]}


def _facts() -> tuple[ChartFacts, dict, dict]:
    current, ended = _order("now", "5640", "active", 400), _order("old", "11289", "stopped", 5, end="2025-03-01")
    chart = Chart.from_request({"patientId": "p1", "draftOrders": {"resourceType": "Bundle", "entry": []}},
                               {"meds": {"resourceType": "Bundle", "entry": [{"resource": current}, {"resource": ended}]}})
    return ChartFacts(KB, chart, TODAY), current, ended


def _evaluate(facts: ChartFacts, text: str) -> list:
    token = current_facts.set(facts)
    try:
        return compiled(text).evaluate({}, {})
    finally:
        current_facts.reset(token)


def test_a_dose_no_rule_reads_is_not_computed_and_one_read_is() -> None:
    facts, current, ended = _facts()
    handed_on = _evaluate(facts, f"therapies('{BLEEDING}').where(current or draft)")
    assert [t["id"] for t in handed_on] == ["MedicationRequest/now"]
    assert id(ended) not in facts._doses  # filtered out on `current`: its dose never read
    assert id(current) not in facts._doses  # handed on as the expression's value: still not read
    assert handed_on[0]["mgPerDay"] == Decimal("400") and id(current) in facts._doses  # read there: worked out
    assert _evaluate(facts, f"therapies('{BLEEDING}').where(current.not()).mgPerDay") == [Decimal("5")]
    assert id(ended) in facts._doses


def test_an_expressions_copy_of_a_therapy_reads_as_the_copy_of_the_whole_fact() -> None:
    """The value an expression gives (its facts copied, floats as Decimals) reads in every way as
    the copy of the fact with its dose, whether the dose was worked out before the copy or after."""
    readings = [
        lambda f: dict(f), lambda f: json.dumps(f, sort_keys=True, default=str), lambda f: list(f.items()),
        lambda f: repr(f), lambda f: f.get("mgPerDay"), lambda f: "mgPerDay" in f, lambda f: f["mgPerDay"],
        lambda f: len(f), lambda f: copy.deepcopy(f), lambda f: {**f},
    ]
    for read in readings:
        for dose_first in (False, True):
            facts, _, _ = _facts()
            if dose_first:
                for fact in facts.therapies([], BLEEDING):
                    dict(fact)
            lazy = _evaluate(facts, f"therapies('{BLEEDING}')")
            read_whole, _, _ = _facts()
            for fact in read_whole.therapies([], BLEEDING):
                dict(fact)
            whole = _evaluate(read_whole, f"therapies('{BLEEDING}')")  # copies of the whole facts
            assert all(type(fact) is dict for fact in whole)
            assert all((type(fact) is dict) == dose_first for fact in lazy)  # a dose not read yet is not read
            assert [dict(fact) for fact in whole] == [dict(fact) for fact in lazy]
            assert [read(fact) for fact in _evaluate(facts, f"therapies('{BLEEDING}')")] == [read(fact) for fact in whole]
            assert all(type(dict(fact)["mgPerDay"]) is Decimal for fact in lazy)
    facts, _, _ = _facts()
    copied_twice = _evaluate(facts, f"therapies('{BLEEDING}').where(current = true).where(draft = false)")
    assert [fact["mgPerDay"] for fact in copied_twice] == [Decimal("400")]


def test_a_therapy_fact_reads_as_the_plain_fact_with_its_dose() -> None:
    """Every way of reading a fact whole gives the eager fact (dose last), however it is first read."""
    readings = [
        lambda f: dict(f), lambda f: {**f}, lambda f: f.copy(), lambda f: copy.copy(f), lambda f: copy.deepcopy(f),
        lambda f: json.dumps(f, sort_keys=True), lambda f: json.dumps(f), lambda f: list(f), lambda f: list(f.items()),
        lambda f: list(f.values()), lambda f: list(f.keys()), lambda f: len(f), lambda f: repr(f), lambda f: f == eager,
        lambda f: eager == f, lambda f: f != eager, lambda f: [eager].index(f) if f in [eager] else None,
        lambda f: f.get("mgPerDay"), lambda f: "mgPerDay" in f, lambda f: f["mgPerDay"], lambda f: f | {},
        lambda f: {} | f,
    ]
    for read in readings:
        facts, _, ended = _facts()
        fact = next(t for t in facts.therapies([], BLEEDING) if t["id"] == "MedicationRequest/old")
        eager = {**{k: dict.__getitem__(fact, k) for k in dict.keys(fact)}, "mgPerDay": facts.dose_of(ended)["mgPerDay"]}
        assert eager["mgPerDay"] == 5.0 and list(eager)[-1] == "mgPerDay"
        assert read(fact) == read(eager)
        assert fact == eager and list(fact.items()) == list(eager.items())
    facts, _, ended = _facts()
    fact = next(t for t in facts.therapies([], BLEEDING) if t["id"] == "MedicationRequest/old")
    assert fact.get("current") is False and "draft" in fact and id(ended) not in facts._doses  # other keys: no dose


def test_a_dose_that_cannot_be_computed_is_absent_as_before() -> None:
    facts, _, ended = _facts()
    del ended["dosageInstruction"][0]["doseAndRate"]
    fact = next(t for t in facts.therapies([], BLEEDING) if t["id"] == "MedicationRequest/old")
    assert "mgPerDay" not in fact and fact.get("mgPerDay") is None and "reason" in facts.dose_of(ended)
    assert _evaluate(facts, f"therapies('{BLEEDING}').where(current.not()).mgPerDay") == []


def test_fhirpathpy_reads_a_therapy_fact_as_the_compiled_code_does() -> None:
    """An expression the compiler leaves to fhirpathpy sees the same facts, dose included."""
    for text in (f"therapies('{BLEEDING}').where(current.not()).mgPerDay",
                 f"therapies('{BLEEDING}').where(current or draft)",
                 f"therapies('{BLEEDING}').select(mgPerDay)",
                 f"therapies('{BLEEDING}').distinct().count()",
                 f"therapies('{BLEEDING}') | therapies('{BLEEDING}')"):
        compiled_facts, fhirpathpy_facts = _facts()[0], _facts()[0]
        expected = _evaluate(compiled_facts, text)
        token = current_facts.set(fhirpathpy_facts)
        try:
            assert list(compiled(text).reference({}, {})) == expected, text
        finally:
            current_facts.reset(token)
