"""renal_function: priority (measured, Cockcroft-Gault, eGFR), units, sex, window edges, status."""

from datetime import date

import pytest

from fhir_module.engine.clinical import RenalCodes, renal_function

LOINC = "http://loinc.org"
CODES = RenalCodes(
    crcl=frozenset({(LOINC, "2164-2")}),
    creatinine_mass=frozenset({(LOINC, "2160-0"), (LOINC, "38483-4")}),
    creatinine_molar=frozenset({(LOINC, "14682-9")}),
    weight=frozenset({(LOINC, "29463-7")}),
    egfr=frozenset({(LOINC, "98979-8"), (LOINC, "62238-1")}),
)
TODAY = date(2026, 11, 26)


def obs(oid, code, value, unit, when="2026-11-20", status="final", date_key="effectiveDateTime", **extra):
    resource = {
        "resourceType": "Observation", "id": oid, "status": status,
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
        **extra,
    }
    if date_key:
        resource[date_key] = when
    return resource


def patient(gender="female", birth="1959-05-01"):
    result = {"resourceType": "Patient", "id": "p1", "birthDate": birth}
    if gender is not None:
        result["gender"] = gender
    return result


def creat(value=2.1, unit="mg/dL", when="2026-11-20", oid="cr", code="2160-0", **kw):
    return obs(oid, code, value, unit, when, **kw)


def weight(value=70, unit="kg", when="2026-11-01", oid="wt", **kw):
    return obs(oid, "29463-7", value, unit, when, **kw)


def test_measured_clearance_wins():
    observations = [creat(), weight(), obs("cl", "2164-2", 45, "mL/min", "2026-11-21")]
    result = renal_function(observations, patient(), TODAY, CODES)
    assert result.method == "measured"
    assert result.ml_min == 45
    assert result.date == date(2026, 11, 21)
    assert result.sources == ("Observation/cl",)
    assert result.evidence == "CrCl 45 mL/min, measured creatinine clearance 45 mL/min on 2026-11-21 (Observation/cl)"


def test_newest_measured_clearance():
    observations = [obs("old", "2164-2", 20, "mL/min", "2026-06-01"), obs("new", "2164-2", 45, "mL/min", "2026-10-01")]
    assert renal_function(observations, patient(), TODAY, CODES).ml_min == 45


def test_cockcroft_gault_female_mg_dl_kg():
    # age 67: (140 - 67) * 70 / (72 * 2.1) * 0.85 = 28.71...
    result = renal_function([creat(), weight()], patient(), TODAY, CODES)
    assert result.method == "cockcroft-gault"
    assert result.ml_min == pytest.approx((140 - 67) * 70 / (72 * 2.1) * 0.85)
    assert result.date == date(2026, 11, 20)
    assert result.sources == ("Observation/cr", "Observation/wt", "Patient/p1")
    assert result.evidence == (
        "CrCl 28.7 mL/min, Cockcroft-Gault from serum creatinine 2.1 mg/dL on 2026-11-20 (Observation/cr), "
        "weight 70 kg on 2026-11-01 (Observation/wt), age 67, female (x 0.85) (Patient/p1)"
    )


def test_cockcroft_gault_male_has_no_factor():
    result = renal_function([creat(), weight()], patient("male"), TODAY, CODES)
    assert result.ml_min == pytest.approx((140 - 67) * 70 / (72 * 2.1))


@pytest.mark.parametrize("gender", [None, "unknown", "other"])
def test_unknown_sex_applies_the_factor_and_says_so(gender):
    result = renal_function([creat(), weight()], patient(gender), TODAY, CODES)
    assert result.ml_min == pytest.approx((140 - 67) * 70 / (72 * 2.1) * 0.85)
    assert "x 0.85 applied" in result.evidence


def test_cockcroft_gault_umol_and_pounds():
    observations = [creat(185.64, "umol/L", code="14682-9"), weight(154.32, "[lb_av]")]
    result = renal_function(observations, patient("male"), TODAY, CODES)
    kg = 154.32 * 0.45359237
    assert result.ml_min == pytest.approx((140 - 67) * kg / (72 * (185.64 / 88.4)))
    assert "185.64 umol/L = 2.1 mg/dL" in result.evidence
    assert "154.32 [lb_av] = 70 kg" in result.evidence


def test_newest_creatinine_across_mass_and_molar_codes():
    observations = [creat(1.0, when="2026-10-01"), creat(176.8, "umol/L", code="14682-9", oid="molar", when="2026-11-10"), weight()]
    result = renal_function(observations, patient("male"), TODAY, CODES)
    assert result.sources[0] == "Observation/molar"
    assert result.ml_min == pytest.approx((140 - 67) * 70 / (72 * 2.0))


def test_creatinine_comparator_is_kept_in_evidence():
    observations = [creat(0.5), weight()]
    observations[0]["valueQuantity"]["comparator"] = "<"
    result = renal_function(observations, patient("male"), TODAY, CODES)
    assert "serum creatinine <0.5 mg/dL (reported as a bound)" in result.evidence


def test_without_weight_falls_back_to_egfr():
    observations = [creat(), obs("gfr", "98979-8", 25, "mL/min/{1.73_m2}", "2026-11-19")]
    result = renal_function(observations, patient(), TODAY, CODES)
    assert result.method == "egfr"
    assert result.ml_min == 25
    assert "used as a proxy for creatinine clearance" in result.evidence


def test_without_age_falls_back_to_egfr():
    observations = [creat(), weight(), obs("gfr", "62238-1", 50, "mL/min/{1.73_m2}")]
    result = renal_function(observations, patient(birth=None), TODAY, CODES)
    assert result.method == "egfr"


def test_nothing_usable_is_none():
    assert renal_function([weight()], patient(), TODAY, CODES) is None
    assert renal_function([], patient(), TODAY, CODES) is None


def test_window_edge_twelve_months_inclusive():
    on_edge = obs("edge", "2164-2", 45, "mL/min", "2025-11-26")
    day_before = obs("before", "2164-2", 45, "mL/min", "2025-11-25")
    assert renal_function([on_edge], patient(), TODAY, CODES).ml_min == 45
    assert renal_function([day_before], patient(), TODAY, CODES) is None


def test_window_applies_to_weight_and_months_is_configurable():
    observations = [creat(), weight(when="2025-10-01")]
    assert renal_function(observations, patient(), TODAY, CODES) is None
    assert renal_function(observations, patient(), TODAY, CODES, months=18).method == "cockcroft-gault"


def test_future_results_are_ignored():
    assert renal_function([obs("f", "2164-2", 45, "mL/min", "2026-11-27")], patient(), TODAY, CODES) is None


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled", "registered", "unknown", None])
def test_rejected_statuses(status):
    assert renal_function([obs("x", "2164-2", 45, "mL/min", status=status)], patient(), TODAY, CODES) is None


@pytest.mark.parametrize("status", ["final", "amended", "corrected", "preliminary"])
def test_accepted_statuses(status):
    assert renal_function([obs("x", "2164-2", 45, "mL/min", status=status)], patient(), TODAY, CODES).ml_min == 45


@pytest.mark.parametrize(
    ("date_fields", "expected"),
    [
        ({"effectiveInstant": "2026-11-10T10:00:00Z"}, date(2026, 11, 10)),
        ({"effectivePeriod": {"start": "2026-11-09", "end": "2026-11-10"}}, date(2026, 11, 10)),
        ({"effectivePeriod": {"start": "2026-11-09"}}, date(2026, 11, 9)),
        ({"issued": "2026-11-11T09:00:00Z"}, date(2026, 11, 11)),
    ],
)
def test_date_sources(date_fields, expected):
    resource = obs("x", "2164-2", 45, "mL/min", date_key=None, **date_fields)
    assert renal_function([resource], patient(), TODAY, CODES).date == expected


def test_code_matched_in_any_coding():
    resource = obs("x", "2164-2", 45, "mL/min")
    resource["code"]["coding"].insert(0, {"system": "http://example.org/lab", "code": "CRCL"})
    assert renal_function([resource], patient(), TODAY, CODES).ml_min == 45


def test_unknown_clearance_unit_is_skipped():
    assert renal_function([obs("x", "2164-2", 0.75, "mL/s")], patient(), TODAY, CODES) is None


def test_no_rounding_of_the_result():
    result = renal_function([obs("x", "2164-2", 29.96, "mL/min")], patient(), TODAY, CODES)
    assert result.ml_min == 29.96
    assert result.evidence.startswith("CrCl 29.96 mL/min")


def test_cockcroft_gault_wins_over_a_newer_egfr():
    observations = [creat(), weight(), obs("gfr", "98979-8", 90, "mL/min/{1.73_m2}", "2026-11-25")]
    assert renal_function(observations, patient(), TODAY, CODES).method == "cockcroft-gault"


def test_measured_clearance_wins_even_when_older():
    observations = [creat(when="2026-11-25"), weight(), obs("cl", "2164-2", 70, "mL/min", "2026-03-01")]
    result = renal_function(observations, patient(), TODAY, CODES)
    assert (result.method, result.ml_min) == ("measured", 70)
