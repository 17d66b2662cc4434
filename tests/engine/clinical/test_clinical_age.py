"""age_years: full and partial birth dates, birthdays, leap days, impossible values."""

from datetime import date, datetime

import pytest

from fhir_module.engine.clinical import age_range, age_years

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


@pytest.mark.parametrize(("birth", "low", "high", "text"), [
    ("2009", 16, 17, "16 or 17 (birth date 2009 is partial)"),
    ("2008-11", 17, 18, "17 or 18 (birth date 2008-11 is partial)"),
    ("2009-06", 17, 17, "17 (birth date 2009-06 is partial)"),
    ("2009-06-15", 17, 17, "17"),
    ("2026", 0, 0, "0 (birth date 2026 is partial)"),  # born this year, at the latest today
])
def test_a_partial_birth_date_gives_an_age_range(birth, low, high, text):
    """clinical-rules.md, partial birth dates: a year or a month gives an age range."""
    found = age_range(birth, date(2026, 11, 26))
    assert (found.low, found.high, found.text) == (low, high, text)
    assert found.partial is (len(birth) < 10)


def test_an_unreadable_or_future_birth_date_has_no_age_range():
    assert age_range("2027", date(2026, 11, 26)) is None
    assert age_range("garbage", date(2026, 11, 26)) is None
    assert age_range(None, date(2026, 11, 26)) is None
