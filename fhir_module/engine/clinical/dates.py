"""FHIR date, dateTime and instant values as calendar dates.

A FHIR date may be partial ("2024", "2024-03"). `parse_fhir_date` returns the first day of the
period a partial date names; `fhir_date_bounds` returns both ends so a caller can pick the side
that is conservative for its question. A dateTime keeps the calendar date as written: the
time zone tells where the clock was, and the clinical day is the local one of that record.
"""

from __future__ import annotations

import calendar
import re
from functools import lru_cache
from datetime import date, datetime, timezone
from typing import Any

# FHIR R4 date / dateTime / instant, loosely on the time part (seconds and zone optional).
_DATE_RE = re.compile(
    r"(?P<y>[0-9]{4})(?:-(?P<m>[0-9]{2})(?:-(?P<d>[0-9]{2})"
    r"(?:T(?P<hh>[0-9]{2}):(?P<mi>[0-9]{2})(?::(?P<ss>[0-9]{2})(?:\.[0-9]+)?)?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?"
)


def fhir_date_bounds(value: Any) -> tuple[date, date] | None:
    """(first, last) calendar day that a FHIR date/dateTime/instant may denote, or None.

    "2024" -> (2024-01-01, 2024-12-31); "2024-02" -> (2024-02-01, 2024-02-29); a full date or a
    dateTime -> (that day, that day). A `date` or `datetime` object is accepted as is. Garbage,
    impossible dates (2023-02-30, year 0000) and non-strings give None.
    """
    if isinstance(value, str):
        return _text_bounds(value)
    if isinstance(value, datetime):
        return value.date(), value.date()
    if isinstance(value, date):
        return value, value
    return None


@lru_cache(maxsize=16384)
def _text_bounds(value: str) -> tuple[date, date] | None:
    """`fhir_date_bounds` of a text: the same dates are read by many rules of a request (and the
    answer depends on the text alone)."""
    match = _DATE_RE.fullmatch(value.strip())
    if match is None:
        return None
    year = int(match["y"])
    try:
        if match["m"] is None:
            return date(year, 1, 1), date(year, 12, 31)
        month = int(match["m"])
        if match["d"] is None:
            last = calendar.monthrange(year, month)[1]
            return date(year, month, 1), date(year, month, last)
        day = date(year, month, int(match["d"]))
    except ValueError:  # year 0, month 13, day 31 in a 30-day month ...
        return None
    if match["hh"] is not None:
        if int(match["hh"]) > 24 or int(match["mi"]) > 59 or int(match["ss"] or 0) > 60:
            return None
    return day, day


def parse_fhir_date(value: Any) -> date | None:
    """The calendar date of a FHIR date/dateTime/instant; a partial date gives its first day.

    Returns None for anything that is not a valid FHIR date (never raises).
    """
    bounds = fhir_date_bounds(value)
    return bounds[0] if bounds else None


def parse_fhir_date_latest(value: Any) -> date | None:
    """Like `parse_fhir_date` but a partial date gives its last possible day."""
    bounds = fhir_date_bounds(value)
    return bounds[1] if bounds else None


def months_before(today: date, months: int) -> date:
    """The same day *months* calendar months before *today* (clamped to the month's last day)."""
    index = today.year * 12 + (today.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    if year < 1:
        return date.min
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(today.day, last))


def fhir_instant(value: Any) -> datetime | None:
    """The moment a FHIR date/dateTime/instant names, in UTC, for ordering results in time.

    Two results of one day are told apart by their time and zone (23:30-05:00 is after 02:00Z
    of the next day); a dateTime without zone is taken as UTC, a date as the start of its day.
    """
    bounds = fhir_date_bounds(value)
    if bounds is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str) and "T" in value:
        text = value.strip().replace("Z", "+00:00")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:  # e.g. hour 24 (allowed by FHIR as the end of a day)
            moment = None
        if moment is not None:
            return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return datetime(bounds[0].year, bounds[0].month, bounds[0].day, tzinfo=timezone.utc)
