"""Observations, Conditions and AllergyIntolerances: which count, their dates and values.

Observation rules shared by every fact the engine reads:
- status final, amended, corrected or preliminary counts; registered, cancelled,
  entered-in-error, unknown or a missing status does not (no result, or a withdrawn one);
- the clinical date is effectiveDateTime, effectiveInstant, effectivePeriod (end, else start),
  else issued; a result dated after today is ignored;
- codes match on any coding of Observation.code (or of a component's code);
- a value comparator ("<0.5") is kept and shown in the evidence;
- a preliminary result is said in the evidence; a quantity without a unit is not used, and said
  when a newer one was passed over for it.
"""

from __future__ import annotations

import re

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable

from ._json import as_dict, as_number, as_str, codings, concept_has_code, dicts, fmt_number, fmt_rounded, has_type, reference_of
from .dates import fhir_instant, parse_fhir_date
from .units import pressure_mmhg

USABLE_OBSERVATION_STATUSES = frozenset({"final", "amended", "corrected", "preliminary"})

_COMPARATORS = frozenset({"<", "<=", ">=", ">"})


@dataclass(frozen=True)
class ObservationValue:
    """The value of one observation (or component): a quantity, a coded value or text."""

    value: float | None  # valueQuantity.value (or valueInteger)
    unit: str | None  # the UCUM code if given, else the unit text
    comparator: str | None  # "<", "<=", ">=", ">" when the value is a bound
    concept: tuple[tuple[str, str, str | None], ...]  # valueCodeableConcept codings
    text: str | None  # valueString, valueBoolean ("true"/"false") or the concept's text
    date: date
    reference: str
    evidence: str


@dataclass(frozen=True)
class BloodPressure:
    """Newest systolic and newest diastolic readings (each may come from its own observation)."""

    systolic: float | None
    diastolic: float | None
    systolic_date: date | None
    diastolic_date: date | None
    date: date  # the newer of the two dates
    references: tuple[str, ...]
    evidence: str


def observation_usable(observation: Any) -> bool:
    """True for an Observation whose status says it holds a result."""
    return has_type(observation, "Observation") and as_str(observation.get("status")) in USABLE_OBSERVATION_STATUSES


def observation_date(observation: Any) -> date | None:
    """The clinically relevant date of an observation (see module docstring)."""
    obs = as_dict(observation)
    for key in ("effectiveDateTime", "effectiveInstant"):
        day = parse_fhir_date(obs.get(key))
        if day is not None:
            return day
    period = as_dict(obs.get("effectivePeriod"))
    day = parse_fhir_date(period.get("end")) or parse_fhir_date(period.get("start"))
    return day or parse_fhir_date(obs.get("issued"))


def observation_moment(observation: Any) -> datetime:
    """When the observation was made, for telling the newest one (see `fhir_instant`); the
    same fields as `observation_date`, and the earliest moment when none parses."""
    obs = as_dict(observation)
    period = as_dict(obs.get("effectivePeriod"))
    for value in (obs.get("effectiveDateTime"), obs.get("effectiveInstant"), period.get("end"),
                  period.get("start"), obs.get("issued")):
        moment = fhir_instant(value)
        if moment is not None:
            return moment
    return datetime.min.replace(tzinfo=timezone.utc)


def status_note(observation: Any) -> str:
    """" (preliminary result)" for a result that is not final yet (it counts, and the card says so)."""
    return " (preliminary result)" if as_str(as_dict(observation).get("status")) == "preliminary" else ""


def window_start(today: date, within_days: int | None) -> date | None:
    """First day inside a look-back window of *within_days* days (inclusive); None = no limit."""
    if within_days is None:
        return None
    return today - timedelta(days=within_days)


def quantity(value: Any) -> tuple[float, str | None, str | None] | None:
    """(value, unit, comparator) of a Quantity; unit is the code if given, else the text."""
    q = as_dict(value)
    number = as_number(q.get("value"))
    if number is None:
        return None
    unit = as_str(q.get("code")) or as_str(q.get("unit"))
    comparator = as_str(q.get("comparator")) if as_str(q.get("comparator")) in _COMPARATORS else None
    return number, unit, comparator


def quantity_units(value: Any) -> list[str]:
    """The unit code and unit text of a Quantity, code first (either may convert)."""
    q = as_dict(value)
    return [u for u in (as_str(q.get("code")), as_str(q.get("unit"))) if u]


def describe_quantity(number: float, unit: str | None, comparator: str | None) -> str:
    """"<0.5 mg/dL" style text."""
    space = "" if (unit or "").startswith("/") else " "  # 128/min, 38 mL/min
    return f"{comparator or ''}{fmt_number(number)}{space + unit_text(unit) if unit else ''}"


def unit_text(unit: str) -> str:
    """A unit as a clinician writes it: UCUM's annotation braces go ("mL/min/{1.73_m2}" -> "mL/min/1.73 m²")."""
    return re.sub(r"\{([^{}]*)\}", lambda m: re.sub(r"m2\b", "m²", m.group(1).replace("_", " ")), unit)


def _label(concept: Any, codes: frozenset[tuple[str, str]]) -> str:
    """The display of the matched coding, else the concept text, else the code."""
    matched = [(code, display) for system, code, display in codings(concept) if (system, code) in codes]
    for _, display in matched:
        if display:
            return display
    return as_str(as_dict(concept).get("text")) or (matched[0][0] if matched else "observation")


def _value_of(holder: dict, label: str, day: date, ref: str, note: str = "") -> ObservationValue | str | None:
    """The value[x] of an observation or component; a reason (str) when its value cannot be
    used (a quantity without a unit); None when it holds none. *note* follows the reference."""
    q = quantity(holder.get("valueQuantity"))
    if q is not None:
        number, unit, comparator = q
        if unit is None:
            return f"{label} {describe_quantity(number, unit, comparator)} on {day.isoformat()}: no readable unit, not used"
        text = f"{label} {describe_quantity(number, unit, comparator)} on {day.isoformat()}{note}"
        return ObservationValue(number, unit, comparator, (), None, day, ref, text)
    integer = as_number(holder.get("valueInteger"))
    if integer is not None:
        text = f"{label} {fmt_number(integer)} on {day.isoformat()}{note}"
        return ObservationValue(integer, None, None, (), None, day, ref, text)
    concept = holder.get("valueCodeableConcept")
    if isinstance(concept, dict) and (codings(concept) or as_str(concept.get("text"))):
        found = tuple(codings(concept))
        shown = as_str(concept.get("text")) or next((d for _, _, d in found if d), None) or found[0][1]
        text = f"{label}: {shown} on {day.isoformat()}{note}"  # "Pregnancy status: Pregnant on ..."
        return ObservationValue(None, None, None, found, as_str(concept.get("text")), day, ref, text)
    for key in ("valueString", "valueBoolean"):
        raw = holder.get(key)
        if isinstance(raw, bool):
            raw = "true" if raw else "false"
        if as_str(raw):
            text = f"{label}: {raw} on {day.isoformat()}{note}"
            return ObservationValue(None, None, None, (), raw, day, ref, text)
    return None


def _dated_usable(observations: Any, today: date, start: date | None) -> Iterable[tuple[dict, date]]:
    """Usable observations dated inside [start, today], with their dates."""
    for obs in dicts(observations) if isinstance(observations, list) else []:
        if not observation_usable(obs):
            continue
        day = observation_date(obs)
        if day is None or day > today or (start is not None and day < start):
            continue
        yield obs, day


def _valid_window(today: Any, within_days: Any) -> bool:
    return isinstance(today, date) and (
        within_days is None or (isinstance(within_days, int) and not isinstance(within_days, bool) and within_days >= 0)
    )


def latest_observation(
    observations: Any,
    codes: frozenset[tuple[str, str]],
    today: date,
    within_days: int | None,
) -> ObservationValue | None:
    """The newest value with one of *codes* (on Observation.code or a component's code) dated
    within *within_days* days before *today* (inclusive; None = any date), or None. Newer values
    that could not be used (no unit) are said in its evidence."""
    if not _valid_window(today, within_days):
        return None
    codes = frozenset(codes)
    best: ObservationValue | None = None
    best_moment: datetime | None = None
    unusable: list[tuple[datetime, str]] = []
    for obs, day in _dated_usable(observations, today, window_start(today, within_days)):
        moment = observation_moment(obs)
        if best_moment is not None and moment <= best_moment:
            continue
        ref, note = reference_of(obs), status_note(obs)
        found = None
        if concept_has_code(obs.get("code"), codes):
            found = _value_of(obs, _label(obs.get("code"), codes), day, ref, note)
        if found is None:
            for component in dicts(obs.get("component")):
                if concept_has_code(component.get("code"), codes):
                    found = _value_of(component, _label(component.get("code"), codes), day, ref, note)
                    if found is not None:
                        break
        if isinstance(found, str):
            unusable.append((moment, found))
        elif found is not None:
            best, best_moment = found, moment
    if best is None:
        return None
    newer = [why for moment, why in sorted(unusable, reverse=True) if moment > best_moment]
    if newer:
        best = replace(best, evidence=f"{best.evidence} (newer: {'; '.join(newer)})")
    return best


def _pressure(holder: dict) -> tuple[float, str | None] | None:
    """A blood pressure value in mmHg (comparator kept) from a valueQuantity."""
    q = as_dict(holder.get("valueQuantity"))
    for unit in quantity_units(q):
        mmhg = pressure_mmhg(q.get("value"), unit)
        if mmhg is not None:
            comparator = as_str(q.get("comparator")) if as_str(q.get("comparator")) in _COMPARATORS else None
            return mmhg, comparator
    return None


def blood_pressure(
    observations: Any,
    panel_codes: frozenset[tuple[str, str]],
    systolic_codes: frozenset[tuple[str, str]],
    diastolic_codes: frozenset[tuple[str, str]],
    today: date,
    within_days: int | None,
) -> BloodPressure | None:
    """The newest systolic and the newest diastolic pressure within the window, or None.

    Readings come from panels (*panel_codes*, values in components coded *systolic_codes* /
    *diastolic_codes*) and from separate systolic or diastolic observations. Values need a
    pressure unit (mm[Hg], mmHg, kPa); a value without one is not read.
    """
    if not _valid_window(today, within_days):
        return None
    panel_codes, systolic_codes, diastolic_codes = map(frozenset, (panel_codes, systolic_codes, diastolic_codes))
    newest: dict[str, tuple[date, float, str | None, str, str]] = {}
    moments: dict[str, datetime] = {}
    unusable: list[tuple[str, datetime, str]] = []

    def offer(kind: str, holder: dict, day: date, ref: str) -> None:
        reading = _pressure(holder)
        if reading is None:
            q = quantity(holder.get("valueQuantity"))
            if q is not None:
                unusable.append((kind, moment, f"{kind} {describe_quantity(*q)} on {day.isoformat()}: "
                                               f"no pressure unit, not used"))
        elif kind not in newest or moment > moments[kind]:
            newest[kind] = (day, reading[0], reading[1], ref, status_note(obs))
            moments[kind] = moment

    for obs, day in _dated_usable(observations, today, window_start(today, within_days)):
        moment = observation_moment(obs)
        ref = reference_of(obs)
        code = obs.get("code")
        if concept_has_code(code, panel_codes):
            for component in dicts(obs.get("component")):
                if concept_has_code(component.get("code"), systolic_codes):
                    offer("systolic", component, day, ref)
                if concept_has_code(component.get("code"), diastolic_codes):
                    offer("diastolic", component, day, ref)
        if concept_has_code(code, systolic_codes):
            offer("systolic", obs, day, ref)
        if concept_has_code(code, diastolic_codes):
            offer("diastolic", obs, day, ref)
    if not newest:
        return None
    sys_reading, dia_reading = newest.get("systolic"), newest.get("diastolic")
    refs = tuple(dict.fromkeys(r[3] for r in (sys_reading, dia_reading) if r))
    latest = max(r[0] for r in (sys_reading, dia_reading) if r)

    def value_text(reading: tuple[date, float, str | None, str, str]) -> str:
        return f"{reading[2] or ''}{fmt_rounded(reading[1])}"  # kPa converts to decimals

    if sys_reading and dia_reading and sys_reading[0] == dia_reading[0] and sys_reading[3] == dia_reading[3]:
        evidence = f"BP {value_text(sys_reading)}/{value_text(dia_reading)} mmHg on {latest.isoformat()}{sys_reading[4]}"
    else:
        parts = []
        for kind, reading in (("systolic", sys_reading), ("diastolic", dia_reading)):
            if reading:
                parts.append(f"{kind} {value_text(reading)} mmHg on {reading[0].isoformat()}{reading[4]}")
            else:
                parts.append(f"no {kind} reading")
        evidence = "BP " + ", ".join(parts)
    newer = [why for kind, moment, why in sorted(unusable, key=lambda u: u[1], reverse=True)
             if kind not in moments or moment > moments[kind]]
    if newer:
        evidence += f" (newer: {'; '.join(newer)})"
    return BloodPressure(
        systolic=sys_reading[1] if sys_reading else None,
        diastolic=dia_reading[1] if dia_reading else None,
        systolic_date=sys_reading[0] if sys_reading else None,
        diastolic_date=dia_reading[0] if dia_reading else None,
        date=latest,
        references=refs,
        evidence=evidence,
    )


_ACTIVE_CLINICAL = frozenset({"active", "recurrence", "relapse"})
_INACTIVE_CLINICAL = frozenset({"inactive", "remission", "resolved"})
_REJECTED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
UNCONFIRMED_VERIFICATION = frozenset({"provisional", "differential", "unconfirmed"})
_ACTIVE_OR_INACTIVE = _ACTIVE_CLINICAL | _INACTIVE_CLINICAL
_STATUS_CODES = (_ACTIVE_CLINICAL | _INACTIVE_CLINICAL | _REJECTED_VERIFICATION | UNCONFIRMED_VERIFICATION
                 | {"confirmed", "presumed"})


def status_codes(concept: Any) -> set[str]:
    """The status a CodeableConcept states, lower-case: read by its code first, then by its text
    or a coding's display when no coding has a status code (a local code "A" with "Active")."""
    found = {code.lower() for _, code, _ in codings(concept)}
    if found & _STATUS_CODES:
        return found
    texts = [as_str(as_dict(concept).get("text")), *(display for _, _, display in codings(concept))]
    return found | {" ".join(text.lower().split()) for text in texts if text}


def clinical_status_text(concept: Any) -> str:
    """A Condition's clinical status for the card: the recognised status (a local code first in
    the list does not hide "active"), else what the concept says, else "status not given"."""
    recognised = sorted(status_codes(concept) & (_ACTIVE_CLINICAL | _INACTIVE_CLINICAL))
    if recognised:
        return recognised[0]
    said = [as_str(as_dict(concept).get("text")), *(display for _, _, display in codings(concept))]
    return next((text for text in said if text), "status not given")


def unconfirmed_text(verification: str) -> str:
    """How a card says a diagnosis is not confirmed: "provisional diagnosis, not confirmed"."""
    return "diagnosis not confirmed" if verification == "unconfirmed" else f"{verification} diagnosis, not confirmed"


def _verification_ok(resource: dict) -> bool:
    return not (status_codes(resource.get("verificationStatus")) & _REJECTED_VERIFICATION)


def condition_counts(condition: Any, *, include_inactive: bool = False) -> bool:
    """True when a Condition counts: clinicalStatus active, recurrence or relapse (or absent),
    plus inactive, remission and resolved with *include_inactive*; verificationStatus not
    refuted or entered-in-error. An unrecognised clinical status does not count."""
    return condition_counting(condition)[1 if include_inactive else 0]


def condition_counting(condition: Any) -> tuple[bool, bool]:
    """`condition_counts` without and with *include_inactive*, its statuses read once."""
    if not has_type(condition, "Condition"):
        return False, False
    if not _verification_ok(condition):
        return False, False
    if "clinicalStatus" not in condition or condition.get("clinicalStatus") is None:
        return True, True
    status = status_codes(condition.get("clinicalStatus"))
    return bool(status & _ACTIVE_CLINICAL), bool(status & _ACTIVE_OR_INACTIVE)


def condition_date(condition: Any) -> date | None:
    """onsetDateTime, else onsetPeriod.start, else recordedDate."""
    dates = condition_dates(condition)
    return dates[0] if dates else None


def condition_dates(condition: Any) -> tuple[date, ...]:
    """Every known date of a Condition, in the order onsetDateTime, onsetPeriod.start,
    recordedDate (for rules that accept an onset *or* a record date)."""
    c = as_dict(condition)
    candidates = (c.get("onsetDateTime"), as_dict(c.get("onsetPeriod")).get("start"), c.get("recordedDate"))
    return tuple(d for d in (parse_fhir_date(v) for v in candidates) if d is not None)


def allergy_counts(allergy: Any) -> bool:
    """True for an AllergyIntolerance whose verificationStatus is not refuted or entered-in-error."""
    return has_type(allergy, "AllergyIntolerance") and _verification_ok(allergy)
