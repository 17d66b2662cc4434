"""Age in whole years from Patient.birthDate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from .dates import fhir_date_bounds, parse_fhir_date

# Older than this is a data error (a placeholder birth date such as 1800-01-01), not an age.
_MAX_AGE_YEARS = 150


def age_years(birth_date: Any, today: Any) -> int | None:
    """Completed years between *birth_date* (a FHIR date) and *today*; None when unknown.

    A partial birth date ("1990-06", "1990") is read as its earliest possible day. That gives
    the oldest age the patient can have, so an age-band rule such as "under 18" fires only when
    the patient is under 18 whatever the missing day or month (a card never fires on data that
    is absent), and the result is the same whichever day of the period is today. Birth dates in
    the future, ages above 150 and unparseable values give None. A patient born on 29 February
    turns a year older on 1 March in common years.
    """
    if not isinstance(today, date):
        return None
    today = date(today.year, today.month, today.day)  # a datetime counts by its calendar day
    born = parse_fhir_date(birth_date)
    if born is None or born > today:
        return None
    years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return years if years <= _MAX_AGE_YEARS else None


@dataclass(frozen=True)
class AgeRange:
    """The ages a patient can have today: one age for a full birth date, two for a year or a
    month only (born early or late in it). A rule on age holds only when it holds for every one."""

    low: int  # the youngest the patient can be
    high: int  # the oldest
    birth_date: str

    @property
    def partial(self) -> bool:
        return len(self.birth_date.strip()) < len("YYYY-MM-DD")

    @property
    def text(self) -> str:
        if self.low == self.high and not self.partial:
            return str(self.low)
        ages = str(self.low) if self.low == self.high else f"{self.low} or {self.high}"
        return f"{ages} (birth date {self.birth_date.strip()} is partial)"


def age_range(birth_date: Any, today: Any) -> AgeRange | None:
    """The ages between the earliest and the latest day *birth_date* may name (see `AgeRange`);
    None when unknown (as `age_years`). A latest day after today is read as today."""
    if not isinstance(today, date) or not isinstance(birth_date, str):
        return None
    today = date(today.year, today.month, today.day)
    bounds = fhir_date_bounds(birth_date)
    if bounds is None:
        return None
    oldest = age_years(bounds[0].isoformat(), today)
    youngest = age_years(min(bounds[1], today).isoformat(), today)
    if oldest is None or youngest is None:
        return None
    return AgeRange(youngest, oldest, birth_date)
