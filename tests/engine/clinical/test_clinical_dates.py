"""parse_fhir_date and friends: FHIR date, dateTime, instant, partial dates and garbage."""

from datetime import date, datetime

import pytest

from fhir_module.engine.clinical import fhir_date_bounds, months_before, parse_fhir_date, parse_fhir_date_latest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20", date(2026, 11, 20)),
        ("2026-11-20T08:30:00Z", date(2026, 11, 20)),
        ("2026-11-20T23:30:00-05:00", date(2026, 11, 20)),  # the date as written, not UTC
        ("2026-11-20T00:15:00.123+09:00", date(2026, 11, 20)),
        ("2026-11-20T08:30", date(2026, 11, 20)),
        ("2026-11", date(2026, 11, 1)),
        ("2026", date(2026, 1, 1)),
        (" 2026-11-20 ", date(2026, 11, 20)),
    ],
)
def test_valid_dates(text, expected):
    assert parse_fhir_date(text) == expected


@pytest.mark.parametrize(
    "garbage",
    [None, "", "yesterday", "2026-13-01", "2023-02-29", "2026-11-31", "0000-01-01", "26-11-20",
     "2026/11/20", "2026-11-20T25:00:00Z", 20261120, 2026.0, True, [], {}, "２０２６-11-20", "2026-1-5"],
)
def test_garbage_is_none(garbage):
    assert parse_fhir_date(garbage) is None


def test_date_objects_are_accepted():
    assert parse_fhir_date(date(2024, 2, 29)) == date(2024, 2, 29)
    assert parse_fhir_date(datetime(2024, 2, 29, 23, 59)) == date(2024, 2, 29)


def test_partial_date_bounds():
    assert fhir_date_bounds("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    assert fhir_date_bounds("2023-02") == (date(2023, 2, 1), date(2023, 2, 28))
    assert fhir_date_bounds("2024") == (date(2024, 1, 1), date(2024, 12, 31))
    assert parse_fhir_date_latest("2024-11") == date(2024, 11, 30)
    assert parse_fhir_date_latest("2024-11-05T10:00:00Z") == date(2024, 11, 5)


def test_months_before_clamps_to_month_end():
    assert months_before(date(2026, 11, 26), 12) == date(2025, 11, 26)
    assert months_before(date(2024, 2, 29), 12) == date(2023, 2, 28)
    assert months_before(date(2026, 3, 31), 1) == date(2026, 2, 28)
    assert months_before(date(2026, 1, 15), 1) == date(2025, 12, 15)


def test_fhir_instant_orders_results_across_time_zones():
    from datetime import timezone

    from fhir_module.engine.clinical.dates import fhir_instant

    late_local = fhir_instant("2026-11-25T23:30:00-05:00")  # 04:30 UTC on the 26th
    early_utc = fhir_instant("2026-11-26T02:00:00Z")
    assert late_local > early_utc
    assert fhir_instant("2026-11-26").tzinfo == timezone.utc
    assert fhir_instant("2026-11-26T10:00:00") == fhir_instant("2026-11-26T10:00:00Z")
    assert fhir_instant("not a date") is None
