"""Age in whole years from Patient.birthDate."""

from __future__ import annotations

from datetime import date
from typing import Any

from .dates import parse_fhir_date

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
