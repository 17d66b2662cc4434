"""renal_function: newest result wins (measured, Cockcroft-Gault, eGFR break same-day ties), units,
sex, window edges, status, exact thresholds, what is not used."""

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_module.engine.clinical import RenalCodes, renal_function
from fhir_module.engine.clinical.renal import renal_assessment

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
    assert result.evidence == "CrCl 45 mL/min, measured on 2026-11-21"


def test_newest_measured_clearance():
    observations = [obs("old", "2164-2", 20, "mL/min", "2026-06-01"), obs("new", "2164-2", 45, "mL/min", "2026-10-01")]
    assert renal_function(observations, patient(), TODAY, CODES).ml_min == 45


def test_cockcroft_gault_female_mg_dl_kg():
    # age 67: (140 - 67) * 70 / (72 * 2.1) * 0.85 = 28.71...
    result = renal_function([creat(), weight()], patient(), TODAY, CODES)
    assert result.method == "cockcroft-gault"
    assert result.ml_min == 28.7269  # 6 significant digits
    assert result.date == date(2026, 11, 20)
    assert result.sources == ("Observation/cr", "Observation/wt", "Patient/p1")
    assert result.evidence == (
        "CrCl 28.7 mL/min by Cockcroft-Gault (serum creatinine 2.1 mg/dL on 2026-11-20, "
        "weight 70 kg on 2026-11-01, age 67, female (x 0.85))"
    )


def test_cockcroft_gault_male_has_no_factor():
    result = renal_function([creat(), weight()], patient("male"), TODAY, CODES)
    assert result.ml_min == pytest.approx((140 - 67) * 70 / (72 * 2.1))


@pytest.mark.parametrize("gender", [None, "unknown", "other"])
def test_unknown_sex_is_not_guessed(gender):
    """clinical-rules.md, sex unknown: no Cockcroft-Gault, never the female factor 'to be safe'."""
    assessment = renal_assessment([creat(), weight()], patient(gender), TODAY, CODES)
    assert assessment.result is None
    assert len(assessment.not_used) == 1
    assert f"sex {gender or 'not recorded'}" in assessment.not_used[0][1]
    assert "female factor is not guessed" in assessment.not_used[0][1]


def test_unknown_sex_falls_back_to_an_egfr():
    observations = [creat(), weight(), obs("gfr", "98979-8", 40, "mL/min/{1.73_m2}", "2026-10-01")]
    result = renal_function(observations, patient("unknown"), TODAY, CODES)
    assert (result.method, result.ml_min) == ("egfr", 40)


def test_cockcroft_gault_umol_and_pounds():
    observations = [creat(185.64, "umol/L", code="14682-9"), weight(154.32, "[lb_av]")]
    result = renal_function(observations, patient("male"), TODAY, CODES)
    kg = 154.32 * 0.45359237
    assert result.ml_min == pytest.approx((140 - 67) * kg / (72 * (185.64 / 88.4)), rel=1e-6)
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


def test_no_band_rounding_of_the_result_and_one_decimal_shown():
    result = renal_function([obs("x", "2164-2", 29.96, "mL/min")], patient(), TODAY, CODES)
    assert result.ml_min == 29.96
    # Cut, not rounded: a value below 30 never reads "30.0".
    assert result.evidence.startswith("CrCl 29.9 mL/min")


@pytest.mark.parametrize(("creatinine", "target"), [(1.46, 15), (0.73, 30), (0.365, 60)])
def test_cockcroft_gault_exactly_on_a_band_edge_is_that_edge(creatinine, target):
    """clinical-rules.md, exact thresholds: (140-67) x 21.6 / (72 x 1.46) is exactly 15 in decimal
    arithmetic and 14.999999999999998 in binary floating point; it must compare as 15."""
    observations = [creat(creatinine), weight(21.6)]
    result = renal_function(observations, patient("male"), TODAY, CODES)
    assert result.ml_min == target
    assert not result.ml_min < target
    assert f"CrCl {target} mL/min" in result.evidence


def test_the_newest_result_wins_whatever_its_kind():
    """clinical-rules.md, which renal result: the newest within 12 months, measured or not."""
    observations = [creat(), weight(), obs("gfr", "98979-8", 90, "mL/min/{1.73_m2}", "2026-11-25")]
    assert renal_function(observations, patient(), TODAY, CODES).method == "egfr"
    observations = [creat(when="2026-11-25"), weight(), obs("cl", "2164-2", 70, "mL/min", "2026-03-01")]
    assert renal_function(observations, patient(), TODAY, CODES).method == "cockcroft-gault"


def test_same_day_ties_go_measured_then_cockcroft_gault_then_egfr():
    day = "2026-11-20"
    egfr = obs("gfr", "98979-8", 90, "mL/min/{1.73_m2}", day)
    measured = obs("cl", "2164-2", 70, "mL/min", day)
    assert renal_function([creat(when=day), weight(), egfr], patient(), TODAY, CODES).method == "cockcroft-gault"
    assert renal_function([creat(when=day), weight(), egfr, measured], patient(), TODAY, CODES).method == "measured"


def test_cockcroft_gault_is_dated_by_its_creatinine_not_its_weight():
    observations = [creat(when="2026-10-01"), weight(when="2026-11-25"), obs("gfr", "98979-8", 90, "mL/min/{1.73_m2}", "2026-11-01")]
    assert renal_function(observations, patient(), TODAY, CODES).method == "egfr"


def test_a_result_without_a_unit_is_not_used_and_said():
    """clinical-rules.md, result status and units: a value without a readable unit is not used."""
    no_unit = obs("cl", "2164-2", 20, "mL/min", "2026-11-25")
    no_unit["valueQuantity"] = {"value": 20}
    observations = [no_unit, obs("gfr", "98979-8", 70, "mL/min/{1.73_m2}", "2026-11-01")]
    assessment = renal_assessment(observations, patient(), TODAY, CODES)
    assert (assessment.result.method, assessment.result.ml_min) == ("egfr", 70)
    assert assessment.not_used == ((date(2026, 11, 25), "creatinine clearance 20 on 2026-11-25: no readable unit, not used",
                                    "Observation/cl"),)


def test_what_is_older_than_the_result_used_is_not_said():
    old = obs("old", "2164-2", 20, "mL/min", "2026-05-01")
    old["valueQuantity"] = {"value": 20}
    assessment = renal_assessment([old, obs("cl", "2164-2", 70, "mL/min", "2026-11-01")], patient(), TODAY, CODES)
    assert assessment.result.ml_min == 70 and assessment.not_used == ()


def test_a_preliminary_result_counts_and_is_said():
    result = renal_function([obs("x", "2164-2", 45, "mL/min", status="preliminary")], patient(), TODAY, CODES)
    assert result.ml_min == 45 and "preliminary result" in result.evidence
    final = renal_function([obs("x", "2164-2", 45, "mL/min")], patient(), TODAY, CODES)
    assert "preliminary" not in final.evidence


_KINDS = ["2164-2", "2160-0", "38483-4", "14682-9", "29463-7", "98979-8", "62238-1", "8867-4"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_KINDS), st.sampled_from([0, 0.9, 2.1, 70, 95, 154]),
                          st.sampled_from(["mg/dL", "umol/L", "kg", "[lb_av]", "mL/min", "mL/min/{1.73_m2}", "", "mmHg"]),
                          st.sampled_from(["2026-11-20", "2026-11-20T08:00:00Z", "2026-06-01", "2025-01-01", "2026-12-30"]),
                          st.sampled_from(["final", "preliminary", "cancelled"]), st.booleans()),
                max_size=10),
       st.sampled_from([None, "female", "male"]))
def test_observations_looked_up_by_code_give_what_reading_them_all_gives(rows, gender):
    """The engine passes `coded` (the chart's index by code): each kind of result is then looked for
    among its own observations, and the assessment must be the one reading every observation gives."""
    observations = []
    for index, (code, value, unit, when, status, as_component) in enumerate(rows):
        resource = obs(f"o{index}", code, value, unit, when, status)
        if as_component:  # a panel holding the value in a component: never read as the result itself
            resource["component"] = [{"code": resource.pop("code"), "valueQuantity": resource.pop("valueQuantity")}]
            resource["code"] = {"coding": [{"system": LOINC, "code": "85354-9"}]}
        observations.append(resource)

    def coded(codes):
        return [o for o in observations
                if any((c["system"], c["code"]) in codes for concept in [o["code"], *(x["code"] for x in o.get("component", []))]
                       for c in concept["coding"])]

    everything = renal_assessment(observations, patient(gender), TODAY, CODES)
    assert renal_assessment((), patient(gender), TODAY, CODES, coded=coded) == everything
