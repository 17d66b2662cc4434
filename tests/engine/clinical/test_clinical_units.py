"""Unit conversions: doses, unit-dose forms, weight, creatinine, periods."""

import pytest

from fhir_module.engine.clinical import creatinine_mg_dl, days_in_period, is_unit_dose, mass_mg, pressure_mmhg, weight_kg


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (80, "mg", 80.0), (80, "MG", 80.0), (80, "milligram(s)", 80.0), (80, "milligrams", 80.0),
        (0.12, "g", 120.0), (1, "gram", 1000.0), (500, "mcg", 0.5), (500, "ug", 0.5),
        (500, "µg", 0.5), (500, "μg", 0.5), (250, "microgram", 0.25), (0, "mg", 0.0),
    ],
)
def test_mass_mg(value, unit, expected):
    assert mass_mg(value, unit) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "unit"),
    [(80, "mL"), (80, "{capsule}"), (80, "kg"), ("80", "mg"), (None, "mg"), (80, None), (-5, "mg"),
     (float("nan"), "mg"), (float("inf"), "mg"), (True, "mg"), (80, ""), (80, 5)],
)
def test_mass_mg_rejects(value, unit):
    assert mass_mg(value, unit) is None


@pytest.mark.parametrize(
    "unit",
    ["{capsule}", "{Capsule}", "capsule(s)", "capsule", "capsules", "cap", "{tbl}", "tablet(s)", "tab",
     "{tablet}", "1", "{each}", "Tablet", " capsule "],
)
def test_unit_dose_units(unit):
    assert is_unit_dose(unit) is True


@pytest.mark.parametrize("unit", ["mg", "mL", "{puff}", "unit", "", None, 1, "10", "{capsule"])
def test_not_unit_dose(unit):
    assert is_unit_dose(unit) is False


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [(70, "kg", 70.0), (70000, "g", 70.0), (154, "[lb_av]", 69.853), (154, "lb", 69.853),
     (154, "lbs", 69.853), (154, "pound", 69.853), (154, "Pounds", 69.853)],
)
def test_weight_kg(value, unit, expected):
    assert weight_kg(value, unit) == pytest.approx(expected, abs=0.001)


def test_weight_rejects_unknown_units():
    assert weight_kg(70, "stone") is None
    assert weight_kg(70, "mg") is None


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [(2.1, "mg/dL", 2.1), (2.1, "mg/dl", 2.1), (2.1, "MG/DL", 2.1), (176.8, "umol/L", 2.0),
     (176.8, "µmol/L", 2.0), (176.8, "μmol/l", 2.0), (0.1768, "mmol/L", 2.0), (21, "mg/L", 2.1)],
)
def test_creatinine_mg_dl(value, unit, expected):
    assert creatinine_mg_dl(value, unit) == pytest.approx(expected)


def test_creatinine_rejects_unknown_unit():
    assert creatinine_mg_dl(2.1, "g/L/h") is None


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [(1, "d", 1.0), (12, "h", 0.5), (30, "min", 30 / 1440), (86400, "s", 1.0), (1, "wk", 7.0),
     (1, "mo", 30.0), (1, "a", 365.0), (2, "day", 2.0), (8, "hours", 1 / 3)],
)
def test_days_in_period(value, unit, expected):
    assert days_in_period(value, unit) == pytest.approx(expected)


@pytest.mark.parametrize(("value", "unit"), [(0, "d"), (-1, "d"), (1, "fortnight"), ("1", "d"), (1, None)])
def test_days_in_period_rejects(value, unit):
    assert days_in_period(value, unit) is None


def test_pressure_mmhg():
    assert pressure_mmhg(160, "mm[Hg]") == 160
    assert pressure_mmhg(160, "mmHg") == 160
    assert pressure_mmhg(21.33, "kPa") == pytest.approx(159.988, abs=0.001)
    assert pressure_mmhg(160, "cmH2O") is None
