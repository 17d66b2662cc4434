"""Every rule threshold T of the knowledge, met exactly by values the engine computes, falls on the
side the rule states (clinical-rules.md, decisions: exact thresholds; issue 9: a Cockcroft-Gault of
exactly 15 computed as 14.999999999999998 gave an ESRD card, the same error at 60 a false limit).

The thresholds are read from the built PlanDefinitions: every comparison of a fact with a numeric
parameter (`%renal.mlMin < %esrdBelow`, `endedDaysAgo < %washout`, ...), in conditions and in
variables. Each fact the knowledge compares has a generator of inputs that land exactly on T in
decimal arithmetic by a different route through the engine's arithmetic (Cockcroft-Gault from
mg/dL, mg/L or umol/L; doses in mg, g, mcg or capsules at every frequency that gives a whole daily
dose; ages; days); the engine's value must compare with T as T itself does. A comparison with no
generator fails the test, so a new threshold cannot escape it.
"""

from __future__ import annotations

import operator
import re
from datetime import date, timedelta
from fractions import Fraction
from typing import Any, Callable, Iterator

import pytest

from fhir_module.engine import Engine
from fhir_module.engine.clinical import RenalCodes, age_range, daily_dose, days_since, renal_function
from fhir_module.knowledge import builtin_module_dir, load_knowledge
from tests.support.scenarios import build_request, card_topic, load_scenario

TODAY = date(2026, 11, 26)
ENGINE = Engine.default()
KNOWLEDGE = load_knowledge(builtin_module_dir("levomilnacipran"))
OPS: dict[str, Callable[[Any, Any], bool]] = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_COMPARISON = re.compile(r"(%?[A-Za-z_][\w.]*)\s*(<=|>=|<|>)\s*%([A-Za-z_]\w*)")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")


def _variables(action: dict[str, Any]) -> dict[str, str]:
    return {e["valueExpression"]["name"]: e["valueExpression"]["expression"]
            for e in action.get("extension") or [] if str(e.get("url", "")).endswith("/variable")}


def _thresholds() -> list[tuple[str, str, str, Fraction]]:
    """(rule id, compared fact, operator, T) for every comparison of a fact with a numeric parameter."""
    found: dict[tuple[str, str, str, Fraction], None] = {}

    def walk(action: dict[str, Any], numbers: dict[str, Fraction]) -> None:
        variables = _variables(action)
        numbers = {**numbers, **{n: Fraction(e) for n, e in variables.items() if _NUMBER.match(e)}}
        numbers = {n: v for n, v in numbers.items() if n not in variables or _NUMBER.match(variables[n])}
        texts = [c["expression"]["expression"] for c in action.get("condition") or []] + list(variables.values())
        for text in texts:
            for fact, op, name in _COMPARISON.findall(text):
                if name in numbers:
                    found[(action.get("id") or "?", fact, op, numbers[name])] = None
        for child in action.get("action") or []:
            walk(child, numbers)

    for plan in ENGINE.kb.plan_definitions:
        for action in plan.get("action") or []:
            walk(action, {})
    return list(found)


# -- generators: inputs that land exactly on T, and the value the engine computes from them --------

LOINC = "http://loinc.org"


def _codes(group: str) -> frozenset[tuple[str, str]]:
    return frozenset((t.system, t.text) for t in KNOWLEDGE.terminology.code_groups()[group] if t.kind == "code")


RENAL_CODES = RenalCodes(_codes("renal_crcl"), _codes("serum_creatinine_mass"), _codes("serum_creatinine_molar"),
                         _codes("body_weight"), _codes("egfr"))
CREATININE = {"mg/dL": (next(iter(RENAL_CODES.creatinine_mass)), Fraction(1)),
              "mg/L": (next(iter(RENAL_CODES.creatinine_mass)), Fraction(10)),
              "umol/L": (next(iter(RENAL_CODES.creatinine_molar)), Fraction("88.4"))}


def _observation(oid: str, code: tuple[str, str], value: Fraction, unit: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final", "code": {"coding": [{"system": code[0], "code": code[1]}]},
            "effectiveDateTime": (TODAY - timedelta(days=2)).isoformat(),
            "valueQuantity": {"value": float(value), "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}


def _birth_date(age: int) -> str:
    return date(TODAY.year - age, TODAY.month, TODAY.day).isoformat()


def renal(target: Fraction) -> Iterator[tuple[str, float]]:
    """Cockcroft-Gault inputs as a lab and a scale write them (creatinine to 2 decimals in mg/dL, to
    1 in umol/L; weight to 0.5 kg) whose exact result is T; and T reported as measured or eGFR."""
    for age in range(20, 96, 3):
        for sex, factor in (("male", Fraction(1)), ("female", Fraction(85, 100))):
            for tenths in range(400, 1400, 5):
                kg = Fraction(tenths, 10)
                mg_dl = (140 - age) * kg * factor / (72 * target)
                if not Fraction(3, 10) <= mg_dl <= 12:
                    continue
                for unit, (code, per_mg_dl) in CREATININE.items():
                    written = mg_dl * per_mg_dl
                    if (written * (10 if unit == "umol/L" else 100)).denominator != 1:
                        continue
                    observations = [_observation("cr", code, written, unit), _observation("wt", next(iter(RENAL_CODES.weight)), kg, "kg")]
                    patient = {"resourceType": "Patient", "id": "p", "gender": sex, "birthDate": _birth_date(age)}
                    result = renal_function(observations, patient, TODAY, RENAL_CODES)
                    yield f"CG {sex} {age} y {kg} kg creatinine {written} {unit}", result.ml_min
    for kind, codes, unit in (("measured", RENAL_CODES.crcl, "mL/min"), ("eGFR", RENAL_CODES.egfr, "mL/min/{1.73_m2}")):
        result = renal_function([_observation("x", next(iter(codes)), target, unit)], {}, TODAY, RENAL_CODES)
        yield f"{kind} {target}", result.ml_min


_SECONDS = {"h": 3600, "d": 86400, "wk": 7 * 86400}
STRENGTHS = sorted({product.strength_mg for product in KNOWLEDGE.products})


def _frequencies() -> Iterator[tuple[int, int, str, Fraction]]:
    """Every timing of up to 12 administrations per 1 to 72 hours, days or weeks with one or more
    administrations a day: (frequency, period, unit, administrations per day)."""
    for unit, seconds in _SECONDS.items():
        for period in range(1, 73 if unit == "h" else 15):
            for frequency in range(1, 13):
                per_day = Fraction(frequency * 86400, period * seconds)
                if 1 <= per_day <= 24:
                    yield frequency, period, unit, per_day


def _order(quantity: dict[str, Any], frequency: int, period: int, unit: str, sequence: int | None = None) -> dict[str, Any]:
    dosage: dict[str, Any] = {"timing": {"repeat": {"frequency": frequency, "period": period, "periodUnit": unit}},
                              "doseAndRate": [{"doseQuantity": quantity}]}
    if sequence is not None:
        dosage["sequence"] = sequence
    return dosage


def _quantities(mg: Fraction) -> Iterator[tuple[str, dict[str, Any], float | None]]:
    """One dose written in mg, g, mcg and capsules of each strength that divides it."""
    for unit, per_mg in (("mg", Fraction(1)), ("g", Fraction(1, 1000)), ("mcg", Fraction(1000))):
        written = mg * per_mg
        if (written * 1000).denominator == 1:
            yield f"{written} {unit}", {"value": float(written), "unit": unit, "code": unit}, None
    for strength in STRENGTHS:
        count = mg / Fraction(strength)
        if count.denominator == 1:
            yield f"{count} x {strength} mg capsules", {"value": int(count), "unit": "capsule", "code": "{capsule}"}, strength


def dose(target: Fraction, *, phase: bool = False) -> Iterator[tuple[str, float]]:
    for frequency, period, unit, per_day in _frequencies():
        mg = target / per_day
        for label, quantity, strength in _quantities(mg):
            dosages = [_order(quantity, frequency, period, unit)]
            if phase:  # the first of two phases: the second is larger
                dosages = [_order(quantity, frequency, period, unit, 1),
                           _order({"value": float(target) * 3, "unit": "mg"}, 1, 1, "d", 2)]
            result = daily_dose({"resourceType": "MedicationRequest", "dosageInstruction": dosages}, lambda _: strength)
            value = result.start_mg_per_day if phase else result.mg_per_day
            yield f"{label} {frequency} per {period} {unit}", value


def administrations(target: Fraction) -> Iterator[tuple[str, float]]:
    for frequency, period, unit, per_day in _frequencies():
        if per_day == target:
            result = daily_dose({"resourceType": "MedicationRequest",
                                 "dosageInstruction": [_order({"value": 20, "unit": "mg"}, frequency, period, unit)]}, lambda _: None)
            yield f"{frequency} per {period} {unit}", result.administrations_per_day


def ages(target: Fraction, which: str) -> Iterator[tuple[str, float]]:
    """Full and partial birth dates whose youngest (`low`) or oldest (`high`) possible age is T."""
    for years in (int(target), int(target) + 1):
        for birth in (_birth_date(years), _birth_date(years)[:7], _birth_date(years)[:4]):
            value = getattr(age_range(birth, TODAY), which)
            if value == target:
                yield f"born {birth}", value


def days(target: Fraction) -> Iterator[tuple[str, float]]:
    yield f"{target} days ago", days_since(TODAY - timedelta(days=int(target)), TODAY)


def as_written(target: Fraction) -> Iterator[tuple[str, float]]:
    """A value the rules read as the chart writes it (heart rate, blood pressure in mmHg)."""
    yield f"{target} as written", float(target)


GENERATORS: dict[str, Callable[[Fraction], Iterator[tuple[str, float]]]] = {
    "%renal.mlMin": renal,
    "%dose.mgPerDay": dose,
    "%dose.startMgPerDay": lambda t: dose(t, phase=True),
    "%dose.administrationsPerDay": administrations,
    "%age.low": lambda t: ages(t, "low"),
    "%age.high": lambda t: ages(t, "high"),
    "daysAgo": days,
    "endedDaysAgo": days,
    "%heartRate.value": as_written,
    "%bp.systolic": as_written,
    "%bp.diastolic": as_written,
}
THRESHOLDS = _thresholds()


def test_the_knowledge_has_thresholds_and_each_has_a_generator() -> None:
    assert {fact for _, fact, _, _ in THRESHOLDS} >= {"%renal.mlMin", "%dose.mgPerDay", "%dose.startMgPerDay", "%age.high"}
    missing = sorted({fact for _, fact, _, _ in THRESHOLDS} - set(GENERATORS))
    assert not missing, f"thresholds compared with {missing} have no edge generator here"


@pytest.mark.parametrize(("rule", "fact", "op", "target"), THRESHOLDS,
                         ids=[f"{r}:{f}{o}{t}" for r, f, o, t in THRESHOLDS])
def test_a_value_computed_to_land_on_the_threshold_is_on_the_stated_side(rule: str, fact: str, op: str, target: Fraction) -> None:
    expected = OPS[op](target, target)  # where the written number itself falls
    values = list(GENERATORS[fact](target))
    assert len(values) >= (20 if fact in ("%renal.mlMin", "%dose.mgPerDay") else 1), f"{fact} = {target}: too few routes"
    wrong = [(label, value) for label, value in values if OPS[op](value, float(target)) != expected]
    assert not wrong, f"{rule}: {fact} {op} {target}: {len(wrong)} of {len(values)} land on the other side, e.g. {wrong[:3]}"


# -- a computed limit: D3's current dose + step -----------------------------------------------------

CURRENT_DOSES = [  # 40 mg/day of levomilnacipran written several ways
    {"timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}, "doseAndRate": [{"doseQuantity": {"value": 20, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}]},
    {"timing": {"repeat": {"frequency": 1, "period": 12, "periodUnit": "h"}}, "doseAndRate": [{"doseQuantity": {"value": 0.02, "unit": "g", "system": "http://unitsofmeasure.org", "code": "g"}}]},
    {"timing": {"repeat": {"frequency": 3, "period": 72, "periodUnit": "h"}}, "doseAndRate": [{"doseQuantity": {"value": 40000, "unit": "mcg", "system": "http://unitsofmeasure.org", "code": "ug"}}]},
]


@pytest.mark.parametrize("current", CURRENT_DOSES, ids=["20mg-bid", "0.02g-q12h", "40000mcg-3-per-72h"])
def test_a_titration_step_of_exactly_the_allowed_size_is_not_too_large(current: dict[str, Any]) -> None:
    """D3's limit is computed (current dose + 40 mg): 40 mg/day however written, then 80 mg: no card."""
    scenario = load_scenario(builtin_module_dir("levomilnacipran") / "cases" / "own" / "own-d-dose-range-upper-within.json", TODAY)
    levo = next(r for r in scenario.record if r["id"].endswith("-levo"))
    levo["dosageInstruction"] = [current]
    draft = scenario.draft_orders[0]
    draft["dosageInstruction"] = [{**current, "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                                   "doseAndRate": [{"doseQuantity": {"value": 80, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}]}]
    service = next(s for s in ENGINE.services() if s["hook"] == scenario.hook and s["id"].startswith("levomilnacipran-"))
    cards = ENGINE.evaluate(service["id"], build_request(scenario, service, fhir_server=None, prefetch=True, today=TODAY), today=TODAY)["cards"]
    assert "dose-limit" not in [card_topic(c) for c in cards], [c["summary"] for c in cards]


# -- what the cards show ----------------------------------------------------------------------------

# A computed clinical value followed by its unit: renal function, doses, converted weights, pressures.
_COMPUTED = re.compile(r"(\d+\.\d{2,})\s*(mL/min|mg/day|mg(?![/\w])|kg\b|mmHg)")


def test_no_card_shows_a_computed_clinical_value_with_more_than_one_decimal() -> None:
    """Issue 9: 'CrCl 15.000 mL/min'. Values as the chart writes them (a creatinine of 1.25 mg/dL) are
    quoted as written; what the engine computes is shown with one decimal at most."""
    from fhir_module.knowledge import case_files

    checked = 0
    services = {s["hook"]: s for s in ENGINE.services()}
    for path in case_files(builtin_module_dir("levomilnacipran")):
        scenario = load_scenario(path, date.today())
        service = services[scenario.hook]
        request = build_request(scenario, service, fhir_server=None, prefetch=True, today=date.today())
        for card in ENGINE.evaluate(service["id"], request, today=date.today())["cards"]:
            shown = card["summary"] + "\n" + "\n".join(line for line in card["detail"].splitlines() if "Monograph" not in line)
            found = _COMPUTED.findall(shown)
            assert not found, f"{scenario.id}: {card_topic(card)} shows {found}"
            checked += 1
    assert checked > 200
