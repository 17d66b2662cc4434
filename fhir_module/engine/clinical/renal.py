"""Renal function in mL/min from a patient's observations.

Newest first within the window (default 12 calendar months back from today, inclusive):
1. a measured creatinine clearance;
2. else Cockcroft-Gault: (140 - age) x weight kg / (72 x serum creatinine mg/dL), x 0.85 for
   a female patient, from the newest serum creatinine and the newest body weight in the
   window. An unknown sex gets the 0.85 factor (the lower, safer estimate) and says so;
3. else the newest eGFR, used as a proxy for creatinine clearance (and said to be one).

Observation status, dates and codes follow `observations` (final/amended/corrected/preliminary,
effective date else issued, any coding). A value counts only with a unit it can convert
(mL/min, optionally per 1.73 m2; mg/dL, mg/L, umol/L or mmol/L; kg, g or lb) and when positive.
The result is not rounded: bands are the caller's (the evidence text rounds for reading).
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from ._json import as_dict, as_str, concept_has_code, fmt_number, fmt_rounded, reference_of
from .age import age_years
from .dates import months_before
from .observations import _dated_usable, describe_quantity, observation_moment, quantity, quantity_units
from .units import creatinine_mg_dl, normalise_unit, weight_kg

FEMALE_FACTOR = 0.85

# mL/min, with or without the per-1.73 m2 normalisation (an eGFR is reported per 1.73 m2).
_CLEARANCE_UNITS = frozenset({"ml/min", "ml/min/{1.73_m2}", "ml/min/1.73m2", "ml/min/1.73m^2", "ml/min/1.73_m2"})


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


def _newest(observations: Any, codes: frozenset, today: date, start: date, convert) -> tuple | None:
    """Newest (date, converted value, raw quantity, observation) whose value converts."""
    best, best_moment = None, None
    for obs, day in _dated_usable(observations, today, start):
        if not concept_has_code(obs.get("code"), codes):
            continue
        q = quantity(obs.get("valueQuantity"))
        if q is None:
            continue
        converted = None
        for unit in quantity_units(obs.get("valueQuantity")):
            converted = convert(q[0], unit)
            if converted is not None:
                break
        if converted is None or converted <= 0:
            continue
        moment = observation_moment(obs)
        if best is None or moment > best_moment:
            best, best_moment = (day, converted, q, obs), moment
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


def renal_function(
    observations: Any,
    patient: Any,
    today: date,
    codes: RenalCodes,
    *,
    months: int = 12,
) -> RenalResult | None:
    """The patient's renal function by the priority in the module docstring, or None."""
    if not isinstance(today, date) or not isinstance(codes, RenalCodes) or not isinstance(months, int):
        return None
    start = months_before(today, months)
    window = f"within {months} months"

    measured = _newest(observations, codes.crcl, today, start, _clearance)
    if measured:
        day, value, q, obs = measured
        ref = reference_of(obs)
        evidence = (
            f"CrCl {fmt_rounded(value)} mL/min, measured creatinine clearance "
            f"{describe_quantity(*q)}{_comparator_note(q)} on {day.isoformat()} ({ref})"
        )
        return RenalResult(_bounded(value, q), "measured", day, evidence, (ref,))

    estimate = _cockcroft_gault(observations, patient, today, start, codes)
    if estimate is not None:
        return estimate

    egfr = _newest(observations, codes.egfr, today, start, _clearance)
    if egfr:
        day, value, q, obs = egfr
        ref = reference_of(obs)
        evidence = (
            f"renal function {fmt_rounded(value)} mL/min from eGFR {describe_quantity(*q)}{_comparator_note(q)} "
            f"on {day.isoformat()} ({ref}), used as a proxy for creatinine clearance "
            f"(no measured clearance or Cockcroft-Gault inputs {window})"
        )
        return RenalResult(_bounded(value, q), "egfr", day, evidence, (ref,))
    return None


def _cockcroft_gault(
    observations: Any, patient: Any, today: date, start: date, codes: RenalCodes
) -> RenalResult | None:
    """Cockcroft-Gault clearance from the newest creatinine and weight, or None if any input is missing."""
    mass = _newest(observations, codes.creatinine_mass, today, start, creatinine_mg_dl)
    molar = _newest(observations, codes.creatinine_molar, today, start, creatinine_mg_dl)
    candidates = [c for c in (mass, molar) if c]
    if not candidates:
        return None
    creat_day, creat_mg_dl, creat_q, creat_obs = max(candidates, key=lambda c: c[0])
    weight = _newest(observations, codes.weight, today, start, weight_kg)
    pat = as_dict(patient)
    age = age_years(pat.get("birthDate"), today)
    if weight is None or age is None or age >= 140:
        return None
    weight_day, kg, weight_q, weight_obs = weight
    gender = as_str(pat.get("gender"))
    value = (140 - age) * kg / (72 * creat_mg_dl)
    if gender == "male":
        sex_text = "male"
    elif gender == "female":
        value *= FEMALE_FACTOR
        sex_text = "female (x 0.85)"
    else:
        value *= FEMALE_FACTOR
        sex_text = f"sex {gender or 'not recorded'} (x 0.85 applied, as for a female, to stay on the safe side)"
    creat_text = describe_quantity(*creat_q)
    if normalise_unit(creat_q[1]) not in ("mg/dl",):
        creat_text += f" = {fmt_number(round(creat_mg_dl, 2))} mg/dL"
    weight_text = describe_quantity(*weight_q)
    if normalise_unit(weight_q[1]) not in ("kg",):
        weight_text += f" = {fmt_number(round(kg, 1))} kg"
    creat_ref, weight_ref, patient_ref = reference_of(creat_obs), reference_of(weight_obs), reference_of(pat or {"resourceType": "Patient"})
    evidence = (
        f"CrCl {fmt_rounded(value)} mL/min, Cockcroft-Gault from serum creatinine {creat_text}"
        f"{_comparator_note(creat_q)} on {creat_day.isoformat()} ({creat_ref}), weight {weight_text} "
        f"on {weight_day.isoformat()} ({weight_ref}), age {age}, {sex_text} ({patient_ref})"
    )
    return RenalResult(value, "cockcroft-gault", creat_day, evidence, (creat_ref, weight_ref, patient_ref))
