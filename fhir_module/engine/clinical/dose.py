"""Daily dose in mg of a MedicationRequest (R4 JSON).

Daily dose = dose per administration x administrations per day.

- Dose per administration: `doseAndRate[].doseQuantity` (the "ordered" entry when types are
  given), or the upper bound of `doseRange`; in mg, g or mcg, or in capsules/tablets times the
  product strength the caller knows (`strength_mg`).
- Administrations per day, first that applies: `timing.repeat` (frequency/frequencyMax per
  period/periodMax periodUnit, the highest frequency over the shortest period; `when` and
  `timeOfDay` entries count one administration each, and the largest of these readings wins);
  `timing.event` (the most events on one day); `timing.code` (v3 GTSAbbreviation: QD, BID, TID,
  QID, AM, PM, QHS/HS, Q<n>H, QOD, WK; by code, display or text). With no timing at all, a
  frequency phrase in `dosageInstruction.text` ("twice daily") is used, else **the dose is
  assumed once daily** and the evidence says "frequency not given; assumed once daily": an
  order without timing is overwhelmingly a once-daily order, and refusing to compute would hide
  an over-dose of its single administration.
- A period longer than a day ("every 2 days", weekly) gives the dose of a dosing day: at least
  one administration, so a dose limit per day still applies to that day.
- Several `dosageInstruction` entries: those with the same `sequence` (or all without one) are
  taken together and add up; different sequences are consecutive phases and the phase with the
  largest daily total counts. Text-only entries (no dose, no timing) are ignored.

Anything that cannot be computed safely gives `DoseUnknown` with a reason, never an exception.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable

from ._json import as_dict, as_list, as_number, as_str, as_written, codings, dicts, fmt_number, fmt_rounded
from .dates import parse_fhir_date
from .units import is_unit_dose, mass_mg, normalise_unit, period_seconds

# Plausibility bounds against data errors (not clinical limits): beyond them the order is
# garbage, not a dose.
_MAX_MG_PER_ADMINISTRATION = 1_000_000.0  # one kilogram
_MAX_UNITS_PER_ADMINISTRATION = 1000.0
_MAX_ADMINISTRATIONS_PER_DAY = 1440.0  # once a minute


@dataclass(frozen=True)
class DoseResult:
    """A computed daily dose; `evidence` shows the arithmetic for the card detail."""

    mg_per_day: float
    per_administration_mg: float
    administrations_per_day: float
    evidence: str
    # The daily dose of the first phase (lowest `sequence`): what a titrated order starts with.
    start_mg_per_day: float | None = None


@dataclass(frozen=True)
class DoseUnknown:
    """The daily dose cannot be computed; `reason` says why, for the card detail."""

    reason: str


@dataclass(frozen=True)
class _EntryDose:
    mg_per_day: float
    per_administration_mg: float
    administrations_per_day: float
    evidence: str


# v3-GTSAbbreviation codes -> administrations on a dosing day.
_TIMING_CODES: dict[str, float] = {
    "QD": 1, "QAM": 1, "QPM": 1, "AM": 1, "PM": 1, "QHS": 1, "HS": 1,
    "BID": 2, "TID": 3, "QID": 4, "QOD": 1, "WK": 1, "QW": 1, "MO": 1,
}
_QNH = re.compile(r"Q(\d{1,2})H")
_QND = re.compile(r"Q(\d{1,2})D")

_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
# "twice daily", "once a day", "3 times a day", "3x daily", "four times per day"; a bare number
# ("take 2 daily") is a count of capsules, not of administrations.
_TIMES_PHRASE = re.compile(
    r"\b(?:(once|twice|thrice)|(one|two|three|four|five|six|\d{1,2})\s*(?:times|x))\s*"
    r"(?:a|per|each|every|/)?\s*(?:day|daily)\b"
)
_EVERY_HOURS = re.compile(r"\bevery\s+(\d{1,2})\s*(?:hours|hrs|hr|h)\b|\bq\s?(\d{1,2})\s?h\b")
_ONCE_PHRASE = re.compile(
    r"\b(?:daily|every\s+(?:day|morning|evening|night)|nightly|at\s+bedtime|in\s+the\s+(?:morning|evening)"
    r"|every\s+other\s+day|every\s+\d+\s+days|weekly|once\s+(?:a|per)\s+week|every\s+week|qd|qam|qpm|qhs|qod)\b"
)
_ABBREVIATION_PHRASE = re.compile(r"\b(bid|tid|qid)\b")


def _phrase_frequency(text: Any) -> tuple[float, str] | None:
    """Administrations per dosing day named by a free-text phrase, with the phrase found."""
    if not isinstance(text, str):
        return None
    lowered = " ".join(text.lower().split())
    match = _TIMES_PHRASE.search(lowered)
    if match:
        word = match.group(1) or match.group(2)
        count = {"once": 1, "twice": 2, "thrice": 3}.get(word) or _NUMBER_WORDS.get(word)
        if count is None:
            count = int(word)
        if count > 0:
            return float(count), match.group(0)
    match = _EVERY_HOURS.search(lowered)
    if match:
        hours = int(match.group(1) or match.group(2))
        if hours > 0:
            return max(1.0, 24 / hours), match.group(0)
    match = _ABBREVIATION_PHRASE.search(lowered)
    if match:
        return float(_TIMING_CODES[match.group(1).upper()]), match.group(0)
    match = _ONCE_PHRASE.search(lowered)
    if match:
        return 1.0, match.group(0)
    return None


def _code_frequency(code: str) -> float | None:
    """Administrations per dosing day for a GTSAbbreviation-style code, or None."""
    key = code.strip().upper()
    if key in _TIMING_CODES:
        return float(_TIMING_CODES[key])
    match = _QNH.fullmatch(key)
    if match and int(match.group(1)) > 0:
        return max(1.0, 24 / int(match.group(1)))
    match = _QND.fullmatch(key)
    if match and int(match.group(1)) > 0:
        return 1.0
    return None


def _positive(values: list[Any]) -> list[float]:
    return [n for n in (as_number(v) for v in values) if n is not None and n > 0]


_UNIT_WORDS = {1: "second", 60: "minute", 3600: "hour", 86400: "day", 7 * 86400: "week", 30 * 86400: "month",
               365 * 86400: "year"}
_TIMES = {1: "once", 2: "twice"}


def times_a_day(per_day: float) -> str:
    """"once daily", "twice daily", "3 times a day": administrations per day in words."""
    if per_day == 1:
        return "once daily"
    if per_day == 2:
        return "twice daily"
    return f"{fmt_number(per_day)} times a day"


def _every(frequency: float, period: float, seconds: int) -> str:
    """"every 8 hours", "3 times a day", "once a week", "twice every 3 days": a timing in words."""
    unit = _UNIT_WORDS.get(seconds, "period")
    if unit == "day" and period == 1:
        return times_a_day(frequency)
    times = _TIMES.get(frequency) if frequency == int(frequency) else None
    times = times or f"{fmt_number(frequency)} times"
    if period == 1:
        return f"{times} a {unit}" if frequency != 1 or unit in ("week", "month", "year") else f"every {unit}"
    every = f"every {fmt_number(period)} {unit}s"
    return every if frequency == 1 else f"{times} {every}"


def _repeat_frequency(repeat: dict) -> tuple[float, str] | str | None:
    """Administrations per dosing day from timing.repeat, with the timing in words; a reason string
    when it is unusable; None when the repeat says nothing about frequency."""
    readings: list[tuple[float, str]] = []
    freq_keys = [k for k in ("frequency", "frequencyMax") if k in repeat]
    period_keys = [k for k in ("period", "periodMax") if k in repeat]
    if freq_keys or period_keys:
        frequencies = _positive([repeat[k] for k in freq_keys])
        if freq_keys and not frequencies:
            return "the timing's frequency is not a positive number"
        frequency = max(frequencies) if frequencies else 1.0  # FHIR: frequency defaults to 1
        periods = _positive([repeat[k] for k in period_keys])
        if not periods:
            return "the timing has a frequency but no positive period"
        period = min(periods)  # the shortest period gives the most administrations
        unit = repeat.get("periodUnit")
        seconds = period_seconds(unit)
        if seconds is None:
            return f'the timing\'s period unit "{unit}" is not a time unit'
        # Not rounded here: 30 mg once every 9 hours is 80 mg/day only when the dose is multiplied
        # by 24/9 before rounding (2.66667 x 30 = 80.0001 would be over an 80 mg limit).
        per_day = frequency * 86400 / (period * seconds)
        text = _every(frequency, period, seconds)
        if per_day < 1:
            text += " (the dose of one dosing day is checked)"
            per_day = 1.0
        readings.append((per_day, text))
    when = [w for w in as_list(repeat.get("when")) if isinstance(w, str)]
    if when:
        readings.append((float(len(when)), f"{times_a_day(len(when))} ({', '.join(when)})"))
    times = [t for t in as_list(repeat.get("timeOfDay")) if isinstance(t, str)]
    if times:
        readings.append((float(len(times)), f"{times_a_day(len(times))} (at {', '.join(times)})"))
    if not readings:
        return None
    return max(readings, key=lambda reading: reading[0])


def _event_frequency(events: Any) -> tuple[float, str] | None:
    """The most administrations on one day among timing.event dates."""
    per_day: dict[date, int] = {}
    for event in as_list(events):
        day = parse_fhir_date(event)
        if day is not None:
            per_day[day] = per_day.get(day, 0) + 1
    if not per_day:
        return None
    busiest = max(per_day.values())
    return float(busiest), f"{times_a_day(busiest)} (timed events, the busiest day)"


def _timing_frequency(entry: dict) -> tuple[float, str] | str:
    """Administrations per dosing day of one dosageInstruction, with the timing in words, or a reason."""
    timing = entry.get("timing")
    if timing is not None and not isinstance(timing, dict):
        return "the dosage timing is not an object"
    timing = as_dict(timing)
    repeat = timing.get("repeat")
    if repeat is not None and not isinstance(repeat, dict):
        return "the timing's repeat is not an object"
    reading = _repeat_frequency(as_dict(repeat))
    if isinstance(reading, str):
        return reading
    if reading is not None:
        return reading
    reading = _event_frequency(timing.get("event"))
    if reading is not None:
        return reading
    code = timing.get("code")
    if code is not None:
        for _, value, _ in codings(code):
            count = _code_frequency(value)
            if count is not None:
                return count, f"{times_a_day(count)} ({value})"
        texts = [display for _, _, display in codings(code)] + [as_dict(code).get("text")]
        for text in texts:
            phrase = _phrase_frequency(text)
            if phrase is not None:
                return phrase[0], f'"{text}"'
        shown = ", ".join(v for _, v, _ in codings(code)) or as_str(as_dict(code).get("text")) or "?"
        return f'the timing code "{shown}" is not one the service can read'
    phrase = _phrase_frequency(entry.get("text"))
    if phrase is not None:
        return phrase[0], f'"{phrase[1]}" (from the dosage text)'
    return 1.0, "(no frequency given: taken as once daily)"


def _dose_quantity(entry: dict) -> tuple[dict, dict | None] | str:
    """The dose Quantity of one dosageInstruction, and its range when it is a range's upper bound;
    or a reason."""
    candidates = [d for d in dicts(entry.get("doseAndRate")) if "doseQuantity" in d or "doseRange" in d]
    if not candidates:
        return "no dose quantity in the dosage instruction"
    ordered = [d for d in candidates if any(c[1] == "ordered" for c in codings(d.get("type")))]
    chosen = (ordered or candidates)[0]
    if "doseQuantity" in chosen:
        quantity = chosen.get("doseQuantity")
        if not isinstance(quantity, dict):
            return "the dose quantity is not an object"
        return quantity, None
    dose_range = as_dict(chosen.get("doseRange"))
    high = dose_range.get("high")
    if not isinstance(high, dict):
        return "the dose range has no upper bound"
    return high, dose_range


def _range_text(dose_range: dict) -> str:
    """"dose range 80 to 160 mg": a range as the order writes it."""
    low, high = as_dict(dose_range.get("low")), as_dict(dose_range.get("high"))
    high_text = f"{fmt_number(as_number(high.get('value')) or 0)} {as_str(high.get('unit')) or as_str(high.get('code')) or ''}".strip()
    low_value = as_number(low.get("value"))
    return f"dose range {fmt_number(low_value)} to {high_text}" if low_value is not None else f"dose range up to {high_text}"


def _dose_mg(
    entry: dict, med_request: dict, strength_mg: Callable[[dict], float | None]
) -> tuple[float, str] | str:
    """Milligrams per administration of one dosageInstruction and the dose in words ("40 mg",
    "2 capsules of 40 mg (80 mg)", "up to 160 mg (dose range 80 to 160 mg: its upper bound is
    checked)"), or a reason."""
    found = _dose_quantity(entry)
    if isinstance(found, str):
        return found
    quantity, dose_range = found
    origin = "the upper bound of the dose range" if dose_range is not None else "the dose"
    value = as_number(quantity.get("value"))
    if value is None:
        return f"{origin} is missing or not a number"
    if value <= 0:
        return f"{origin} {fmt_number(value)} is not a positive amount"
    units = [u for u in (quantity.get("code"), quantity.get("unit")) if isinstance(u, str) and u.strip()]
    if not units:
        return f"{origin} {fmt_number(value)} has no unit"
    shown_unit = units[-1].strip()
    mg, text = None, ""
    for unit in units:
        mg = mass_mg(value, unit)
        if mg is not None:
            if mg > _MAX_MG_PER_ADMINISTRATION:
                return f"{origin} {fmt_number(value)} {shown_unit} is not a plausible amount"
            unit_is_mg = normalise_unit(unit) in {"mg", "milligram", "milligrams", "milligram(s)"}
            text = f"{fmt_rounded(mg)} mg" if unit_is_mg else f"{fmt_number(value)} {shown_unit} ({fmt_rounded(mg)} mg)"
            break
    if mg is None:
        if not any(is_unit_dose(unit) for unit in units):
            return f'{origin} unit "{shown_unit}" is neither a mass nor a capsule/tablet count'
        if value > _MAX_UNITS_PER_ADMINISTRATION:
            return f"{origin} {fmt_number(value)} {shown_unit} is not a plausible amount"
        strength = as_number(strength_mg(med_request))
        if strength is None or strength <= 0:
            return f"{origin} is {fmt_number(value)} {shown_unit} but the product strength is not known"
        mg = as_written(value * strength)
        text = f"{fmt_number(value)} {_count_word(shown_unit, value)} of {fmt_number(strength)} mg ({fmt_rounded(mg)} mg)"
    if dose_range is not None:
        text = f"up to {text} ({_range_text(dose_range)}: its upper bound is checked)"
    return mg, text


def _count_word(unit: str, count: float) -> str:
    """"capsules", "tablet": a count unit in words ("{capsule}" and UCUM "1" included)."""
    word = unit.strip().strip("{}").rstrip("(s)") or "unit"
    word = "unit" if word == "1" else word
    return word if count == 1 or word.endswith("s") else word + "s"


def _entry_dose(
    entry: dict, med_request: dict, strength_mg: Callable[[dict], float | None]
) -> _EntryDose | str:
    dose = _dose_mg(entry, med_request, strength_mg)
    if isinstance(dose, str):
        return dose
    timing = _timing_frequency(entry)
    if isinstance(timing, str):
        return timing
    mg, dose_text = dose
    per_day, timing_text = timing
    if per_day > _MAX_ADMINISTRATIONS_PER_DAY:
        return f"{timing_text} is not a plausible frequency"
    total = as_written(mg * per_day)  # computed values are rounded once, at the end
    return _EntryDose(total, mg, as_written(per_day), f"{dose_text} {timing_text} = {fmt_rounded(total)} mg/day")


def _sequence_key(entry: dict) -> int | None:
    number = as_number(entry.get("sequence"))
    return int(number) if number is not None and number == int(number) else None


def daily_dose(
    med_request: Any, strength_mg: Callable[[dict], float | None]
) -> DoseResult | DoseUnknown:
    """The daily dose in mg of a MedicationRequest, or DoseUnknown with the reason.

    `strength_mg(med_request)` gives the mg per capsule/tablet of the ordered product (None if
    unknown); it is called only when the dose is a count of capsules or tablets. See the module
    docstring for the rules, including the once-daily assumption when no timing is given.
    """
    if not isinstance(med_request, dict):
        return DoseUnknown("the order is not a FHIR resource")
    instructions = med_request.get("dosageInstruction")
    if not isinstance(instructions, list) or not instructions:
        return DoseUnknown("the order has no dosage instruction")
    groups: dict[int | None, list[_EntryDose]] = {}
    for index, entry in enumerate(instructions):
        if not isinstance(entry, dict):
            return DoseUnknown(f"dosage instruction {index + 1} is not an object")
        if "doseAndRate" not in entry and "timing" not in entry:
            continue  # a text-only instruction ("take with food") adds no dose
        result = _entry_dose(entry, med_request, strength_mg)
        if isinstance(result, str):
            prefix = f"dosage instruction {index + 1}: " if len(instructions) > 1 else ""
            return DoseUnknown(prefix + result)
        groups.setdefault(_sequence_key(entry), []).append(result)
    if not groups:
        return DoseUnknown("no dose quantity in the dosage instructions")
    totals = []
    for key, entries in groups.items():
        mg_per_day = as_written(sum(e.mg_per_day for e in entries))
        per_admin = max(e.per_administration_mg for e in entries)
        per_day = sum(e.administrations_per_day for e in entries)
        evidence = "; ".join(e.evidence for e in entries)
        if len(entries) > 1:
            evidence += f"; together {fmt_rounded(mg_per_day)} mg/day"
        totals.append((mg_per_day, key, per_admin, per_day, evidence))
    mg_per_day, key, per_admin, per_day, evidence = max(totals, key=lambda t: t[0])
    # Phases run in `sequence` order; entries without one are taken as running throughout.
    start = min(totals, key=lambda t: (t[1] is None, t[1] or 0))[0]
    if len(totals) > 1:
        evidence = (f"the largest of {len(totals)} phases (phase {key}): {evidence}; "
                    f"the first phase: {fmt_rounded(start)} mg/day")
    if not math.isfinite(mg_per_day):
        return DoseUnknown("the daily dose is not a finite number")
    return DoseResult(mg_per_day, per_admin, per_day, evidence, start)
