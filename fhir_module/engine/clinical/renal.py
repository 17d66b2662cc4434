"""Renal function in mL/min from a patient's observations.

Three kinds of result, each the newest of its kind within the window (default 12 calendar
months back from today, inclusive):
1. a measured creatinine clearance;
2. Cockcroft-Gault: (140 - age) x weight kg / (72 x serum creatinine mg/dL), x 0.85 for a
   female patient, from the newest serum creatinine and the newest body weight in the window,
   dated by its creatinine. It needs the sex: with `gender` unknown, other or absent it is not
   computed (the female factor is never guessed);
3. an eGFR, used as a proxy for creatinine clearance (and said to be one).
The newest result wins, whatever its kind; the order above only breaks ties on the same day.

Observation status, dates and codes follow `observations` (final/amended/corrected/preliminary,
a preliminary result said; effective date else issued; any coding). A value counts only with a
unit it can convert (mL/min, optionally per 1.73 m2; mg/dL, mg/L, umol/L or mmol/L; kg, g or lb)
and when positive; a result without one is not used, and said. Computed values are rounded to
6 significant digits (`as_written`), so an exact band edge stays on its side; bands are the
caller's (the evidence text shows one decimal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable, Literal

from ._json import as_dict, as_str, as_written, concept_has_code, fmt_rounded, reference_of
from .age import age_years
from .dates import months_before
from .observations import (
    _dated_usable,
    describe_quantity,
    observation_moment,
    quantity,
    quantity_units,
    status_note,
    unit_text,
)
from .units import creatinine_mg_dl, normalise_unit, weight_kg

FEMALE_FACTOR = 0.85

# mL/min, with or without the per-1.73 m2 normalisation (an eGFR is reported per 1.73 m2).
_CLEARANCE_UNITS = frozenset({"ml/min", "ml/min/{1.73_m2}", "ml/min/1.73m2", "ml/min/1.73m^2", "ml/min/1.73_m2"})
# Same-day ties: a measured clearance over an estimate from creatinine over an eGFR proxy.
_PRIORITY = {"measured": 0, "cockcroft-gault": 1, "egfr": 2}


@dataclass(frozen=True)
class RenalCodes:
    """(system, code) pairs for each kind of observation the estimate can use."""

    crcl: frozenset[tuple[str, str]]
    creatinine_mass: frozenset[tuple[str, str]]
    creatinine_molar: frozenset[tuple[str, str]]
    weight: frozenset[tuple[str, str]]
    egfr: frozenset[tuple[str, str]]


@dataclass(frozen=True)
class RenalResult:
    """Renal function in mL/min, how it was obtained, its date and the resources used."""

    ml_min: float
    method: Literal["measured", "cockcroft-gault", "egfr"]
    date: date
    evidence: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class RenalAssessment:
    """The result that counts (None when there is none) and what was found but could not be used."""

    result: RenalResult | None
    not_used: tuple[tuple[date, str, str], ...]  # (date, why, the resource), newest first


@dataclass(frozen=True)
class _Reading:
    day: date
    value: float
    quantity: tuple  # (value, unit, comparator) as written
    observation: dict


def _newest(observations: Any, codes: frozenset, today: date, start: date, convert: Callable,
            label: str, not_used: list[tuple[date, str]]) -> _Reading | None:
    """The newest reading with one of *codes* whose value converts; a value that does not (no
    readable unit, not positive) is put in *not_used* with the reason."""
    best, best_moment = None, None
    for obs, day in _dated_usable(observations, today, start):
        if not concept_has_code(obs.get("code"), codes):
            continue
        q = quantity(obs.get("valueQuantity"))
        if q is None:
            continue
        converted = next((c for unit in quantity_units(obs.get("valueQuantity"))
                          if (c := convert(q[0], unit)) is not None), None)
        if converted is None or converted <= 0:
            why = "no readable unit" if converted is None else "not a positive value"
            not_used.append((day, f"{label} {describe_quantity(*q)} on {day.isoformat()}: {why}, not used", reference_of(obs)))
            continue
        moment = observation_moment(obs)
        if best is None or moment > best_moment:
            best, best_moment = _Reading(day, converted, q, obs), moment
    return best


def _clearance(value: float, unit: str) -> float | None:
    return value if normalise_unit(unit) in _CLEARANCE_UNITS else None


def _comparator_note(q: tuple) -> str:
    return " (reported as a bound)" if q[2] else ""


def _bounded(value: float, q: tuple) -> float:
    """A result reported as a strict bound ("<15") lies beyond it: just under (or over) the number,
    so a band edge at that number classifies it on the right side. "<=" and ">=" keep the number."""
    comparator = q[2]
    if comparator == "<":
        return math.nextafter(value, -math.inf)
    if comparator == ">":
        return math.nextafter(value, math.inf)
    return value


def renal_assessment(
    observations: Any,
    patient: Any,
    today: date,
    codes: RenalCodes,
    *,
    months: int = 12,
    coded: Callable[[frozenset], Any] | None = None,
) -> RenalAssessment:
    """The patient's renal function by the rules of the module docstring, and what was not used.
    `coded(codes)`, when the caller has the chart indexed by code, gives the observations coded
    (on `code` or a component) with one of the codes, in chart order; it is read instead of
    `observations`, and each kind of result is looked for among its own observations only."""
    if not isinstance(today, date) or not isinstance(codes, RenalCodes) or not isinstance(months, int):
        return RenalAssessment(None, ())
    start = months_before(today, months)
    not_used: list[tuple[date, str]] = []
    with_codes = coded or (lambda _: observations)
    found = [result for result in (
        _reported(with_codes, today, start, codes.crcl, "measured", not_used),
        _cockcroft_gault(with_codes, patient, today, start, codes, not_used),
        _reported(with_codes, today, start, codes.egfr, "egfr", not_used),
    ) if result is not None]
    result = max(found, key=lambda r: (r.date, -_PRIORITY[r.method]), default=None)
    # Only what could have changed the answer is worth saying: results as new as the one used.
    relevant = sorted((item for item in not_used if result is None or item[0] >= result.date), reverse=True)
    return RenalAssessment(result, tuple(dict.fromkeys(relevant)))


def renal_function(
    observations: Any,
    patient: Any,
    today: date,
    codes: RenalCodes,
    *,
    months: int = 12,
) -> RenalResult | None:
    """The patient's renal function by the rules of the module docstring, or None."""
    return renal_assessment(observations, patient, today, codes, months=months).result


def _reported(with_codes: Callable[[frozenset], Any], today: date, start: date, codes: frozenset,
              method: Literal["measured", "egfr"], not_used: list[tuple[date, str]]) -> RenalResult | None:
    """A clearance as the lab reports it: a measured creatinine clearance, or an eGFR used as a proxy."""
    label = "creatinine clearance" if method == "measured" else "eGFR"
    reading = _newest(with_codes(codes), codes, today, start, _clearance, label, not_used)
    if reading is None:
        return None
    ref = reference_of(reading.observation)
    when = f"on {reading.day.isoformat()}{_comparator_note(reading.quantity)}{status_note(reading.observation)}"
    value, unit, comparator = reading.quantity
    shown = f"{comparator or ''}{fmt_rounded(value)} {unit_text(unit)}"  # compared with band edges: one decimal, cut
    if method == "measured":
        evidence = f"CrCl {shown}, measured {when}"
    else:
        evidence = f"eGFR {shown} {when}, used as a proxy for creatinine clearance"
    return RenalResult(_bounded(reading.value, reading.quantity), method, reading.day, evidence, (ref,))


def _cockcroft_gault(
    with_codes: Callable[[frozenset], Any], patient: Any, today: date, start: date, codes: RenalCodes,
    not_used: list[tuple[date, str]],
) -> RenalResult | None:
    """Cockcroft-Gault clearance from the newest creatinine and weight; None (with the reason in
    *not_used*) when an input is missing."""
    mass = _newest(with_codes(codes.creatinine_mass), codes.creatinine_mass, today, start, creatinine_mg_dl, "serum creatinine", not_used)
    molar = _newest(with_codes(codes.creatinine_molar), codes.creatinine_molar, today, start, creatinine_mg_dl, "serum creatinine", not_used)
    candidates = [c for c in (mass, molar) if c]
    if not candidates:
        return None
    creatinine = max(candidates, key=lambda c: c.day)
    weight = _newest(with_codes(codes.weight), codes.weight, today, start, weight_kg, "body weight", not_used)
    pat = as_dict(patient)
    age = age_years(pat.get("birthDate"), today)
    gender = as_str(pat.get("gender"))
    missing = [why for why, absent in (
        ("no body weight in the same 12 months", weight is None),
        ("no birth date", age is None),
        (f"sex {gender or 'not recorded'} (the formula needs male or female; the female factor is not guessed)",
         gender not in ("male", "female")),
    ) if absent]
    if missing or age >= 140:
        why = "; ".join(missing) or f"age {age}"
        not_used.append((creatinine.day, f"Cockcroft-Gault not computed from serum creatinine on "
                                         f"{creatinine.day.isoformat()}: {why}", reference_of(creatinine.observation)))
        return None
    factor = FEMALE_FACTOR if gender == "female" else 1.0
    value = as_written((140 - age) * weight.value / (72 * creatinine.value) * factor)
    creat_text = describe_quantity(*creatinine.quantity)
    if normalise_unit(creatinine.quantity[1]) != "mg/dl":
        creat_text += f" = {fmt_rounded(creatinine.value, cut=False)} mg/dL"
    weight_text = describe_quantity(*weight.quantity)
    if normalise_unit(weight.quantity[1]) != "kg":
        weight_text += f" = {fmt_rounded(weight.value, cut=False)} kg"
    sex_text = "female (x 0.85)" if gender == "female" else "male"
    creat_ref, weight_ref = reference_of(creatinine.observation), reference_of(weight.observation)
    patient_ref = reference_of(pat or {"resourceType": "Patient"})
    evidence = (
        f"CrCl {fmt_rounded(value)} mL/min by Cockcroft-Gault (serum creatinine {creat_text}"
        f"{_comparator_note(creatinine.quantity)} on {creatinine.day.isoformat()}{status_note(creatinine.observation)}, "
        f"weight {weight_text} on {weight.day.isoformat()}{status_note(weight.observation)}, age {age}, {sex_text})"
    )
    return RenalResult(value, "cockcroft-gault", creatinine.day, evidence, (creat_ref, weight_ref, patient_ref))
