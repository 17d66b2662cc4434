"""age_years: full and partial birth dates, birthdays, leap days, impossible values."""

from datetime import date, datetime

import pytest

from fhir_module.engine.clinical import age_years

TODAY = date(2026, 11, 26)


@pytest.mark.parametrize(
    ("birth", "age"),
    [
        ("2008-11-26", 18),  # birthday today
        ("2008-11-27", 17),  # birthday tomorrow
        ("1959-01-01", 67),
        ("2026-11-26", 0),
        ("2008-11", 18),  # earliest possible day: 2008-11-01
        ("2008-12", 17),
        ("2008", 18),  # 2008-01-01
        ("2009", 17),
        ("1959-01-01T10:00:00Z", 67),
    ],
)
def test_age(birth, age):
    assert age_years(birth, TODAY) == age


def test_leap_day_birthday():
    assert age_years("2008-02-29", date(2026, 2, 28)) == 17
    assert age_years("2008-02-29", date(2026, 3, 1)) == 18
    assert age_years("2008-02-29", date(2028, 2, 29)) == 20


@pytest.mark.parametrize("birth", ["2026-11-27", "2027", None, "", "abc", 1990, {}, "1800-01-01"])
def test_unknown_age(birth):
    assert age_years(birth, TODAY) is None


def test_today_must_be_a_date():
    assert age_years("1990-01-01", "2026-11-26") is None
    assert age_years("1990-01-01", datetime(2026, 11, 26, 12)) == 36
