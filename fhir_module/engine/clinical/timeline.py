"""Therapy timeline: is a MedicationRequest/MedicationStatement current, or when did it end?

Per the clinical rules:
- current: a MedicationRequest `active` or `on-hold`, or a MedicationStatement `active`,
  `intended` or `on-hold`, whose end date is not in the past;
- end date: the earliest of MedicationStatement.effectivePeriod.end,
  dosageInstruction.timing.repeat.boundsPeriod.end and dispenseRequest.validityPeriod.end;
  a current-status resource whose end date is past ended on that date;
- `stopped` or `completed` with an end date ended then (a future planned end of a stopped
  therapy is read as "ended today at the latest"); without one, on the first present of
  authoredOn and the start of effective[x] (effectivePeriod.start, effectiveDateTime), and on
  meta.lastUpdated only when none of these exists;
- `entered-in-error`, `cancelled`, `not-taken`, `draft`, `unknown`, a missing status and a
  MedicationRequest with doNotPerform never count (draft orders are judged by the caller).

Two readings keep the rules on the safe side: a partial end date ("2026-11") stands for its
last possible day, and the dosage end is that of its last phase (highest `sequence`), counted
only when every instruction of that phase has one: a last phase without an end is current.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from ._json import as_dict, as_number, as_str, dicts
from .dates import parse_fhir_date_latest

_CURRENT = {
    "MedicationRequest": frozenset({"active", "on-hold"}),
    "MedicationStatement": frozenset({"active", "intended", "on-hold"}),
}
_ENDED = frozenset({"stopped", "completed"})


@dataclass(frozen=True)
class TherapyStatus:
    """Whether a therapy counts, is current, or the date it ended (None if unknown/current)."""

    counts: bool
    current: bool
    ended: date | None
    evidence: str


def days_since(d: date, today: date) -> int:
    """Whole days from *d* to *today* (negative when *d* is in the future)."""
    return (today - d).days


def _dosage_end(resource: dict) -> date | None:
    """The end of the last phase of the dosage: the latest bounds end of the instructions of the
    highest `sequence` (all instructions when none has one), when each of them has one. A last
    phase without an end runs on, so the therapy is current."""
    instructions = dicts(resource.get("dosageInstruction")) or dicts(resource.get("dosage"))
    sequences = [n for n in (as_number(entry.get("sequence")) for entry in instructions) if n is not None]
    if sequences:
        instructions = [entry for entry in instructions if as_number(entry.get("sequence")) == max(sequences)]
    ends = []
    for entry in instructions:
        bounds = as_dict(as_dict(as_dict(entry.get("timing")).get("repeat")).get("boundsPeriod"))
        end = parse_fhir_date_latest(bounds.get("end"))
        if end is None:
            return None
        ends.append(end)
    return max(ends) if ends else None


def _end_date(resource: dict) -> tuple[date, str] | None:
    """The earliest recorded end date and the field it came from."""
    found = []
    if resource.get("resourceType") == "MedicationStatement":
        end = parse_fhir_date_latest(as_dict(resource.get("effectivePeriod")).get("end"))
        if end:
            found.append((end, "end of the recorded period"))
    end = _dosage_end(resource)
    if end:
        found.append((end, "end of the last dosing period"))
    end = parse_fhir_date_latest(as_dict(as_dict(resource.get("dispenseRequest")).get("validityPeriod")).get("end"))
    if end:
        found.append((end, "end of the prescription's validity"))
    return min(found, key=lambda f: f[0]) if found else None


def _last_known_date(resource: dict) -> tuple[date, str] | None:
    """When a stopped or completed therapy without an end date ended: the first present of
    `authoredOn` and the start of `effective[x]`; `meta.lastUpdated` only when neither exists.

    `meta.lastUpdated` is when a server last stored the record, not when the therapy happened: a
    FHIR server sets it on every write, so preferring it would make every stopped therapy end
    "today" once the chart has been copied or migrated.
    """
    for name, value in (
        ("the date it was ordered", resource.get("authoredOn")),
        ("the start of the recorded period", as_dict(resource.get("effectivePeriod")).get("start")),
        ("the date it was recorded", resource.get("effectiveDateTime")),
        ("the record's last update", as_dict(resource.get("meta")).get("lastUpdated")),
    ):
        day = parse_fhir_date_latest(value)
        if day is not None:
            return day, name
    return None


def therapy_status(resource: Any, today: date) -> TherapyStatus:
    """Where a MedicationRequest or MedicationStatement stands on *today* (see module docstring).
    The evidence says it in words ("active, no end date"); the caller names the resource."""
    if not isinstance(resource, dict) or as_str(resource.get("resourceType")) not in _CURRENT:
        return TherapyStatus(False, False, None, "not a medication order or statement")
    if not isinstance(today, date):
        return TherapyStatus(False, False, None, "no date to judge the therapy against")
    rtype = resource["resourceType"]
    status = as_str(resource.get("status"))
    if rtype == "MedicationRequest" and resource.get("doNotPerform") is True:
        return TherapyStatus(False, False, None, "an order not to give the medication")
    end = _end_date(resource)
    if status in _CURRENT[rtype]:
        if end and end[0] < today:
            return TherapyStatus(True, False, end[0], f"{status}, but ended {end[0].isoformat()} ({end[1]})")
        until = f" until {end[0].isoformat()} ({end[1]})" if end else ", no end date"
        return TherapyStatus(True, True, None, f"{status}{until}")
    if status in _ENDED:
        if end:
            if end[0] <= today:
                return TherapyStatus(True, False, end[0], f"{status}, ended {end[0].isoformat()} ({end[1]})")
            text = f"{status} before its planned end {end[0].isoformat()}: taken as ended today at the latest"
            return TherapyStatus(True, False, today, text)
        last = _last_known_date(resource)
        if last:
            ended = min(last[0], today)
            text = f"{status}, no end date: taken as ended {ended.isoformat()} ({last[1]})"
            return TherapyStatus(True, False, ended, text)
        return TherapyStatus(True, False, None, f"{status}, no date: end date unknown")
    shown = status or "missing"
    return TherapyStatus(False, False, None, f"status {shown}: does not count")
