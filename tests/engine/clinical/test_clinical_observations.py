"""latest_observation, blood_pressure, condition_counts/condition_date, allergy_counts."""

from datetime import date

import pytest

from fhir_module.engine.clinical import (
    allergy_counts,
    blood_pressure,
    condition_counts,
    condition_date,
    condition_dates,
    latest_observation,
)

LOINC = "http://loinc.org"
TODAY = date(2026, 11, 26)
HR = frozenset({(LOINC, "8867-4")})
PANEL = frozenset({(LOINC, "85354-9")})
SYS = frozenset({(LOINC, "8480-6")})
DIA = frozenset({(LOINC, "8462-4")})


def coded(code, display=None):
    coding = {"system": LOINC, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def qty(value, unit):
    return {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}


def obs(oid, code, when, status="final", **value):
    return {"resourceType": "Observation", "id": oid, "status": status, "code": coded(code, "Heart rate" if code == "8867-4" else None),
            "effectiveDateTime": when, **value}


def test_latest_heart_rate_in_window():
    observations = [
        obs("old", "8867-4", "2026-11-01", valueQuantity=qty(90, "/min")),
        obs("new", "8867-4", "2026-11-20", valueQuantity=qty(112, "/min")),
        obs("err", "8867-4", "2026-11-25", status="entered-in-error", valueQuantity=qty(40, "/min")),
    ]
    found = latest_observation(observations, HR, TODAY, 30)
    assert (found.value, found.unit, found.date, found.reference) == (112, "/min", date(2026, 11, 20), "Observation/new")
    assert found.evidence == "Heart rate 112/min on 2026-11-20"


def test_window_edges_in_days():
    observations = [obs("edge", "8867-4", "2026-10-27", valueQuantity=qty(120, "/min"))]
    assert latest_observation(observations, HR, TODAY, 30).value == 120
    assert latest_observation(observations, HR, TODAY, 29) is None
    assert latest_observation(observations, HR, TODAY, None).value == 120


def test_future_and_undated_are_ignored():
    observations = [obs("f", "8867-4", "2026-11-27", valueQuantity=qty(120, "/min")),
                    obs("u", "8867-4", "soon", valueQuantity=qty(120, "/min"))]
    assert latest_observation(observations, HR, TODAY, None) is None


def test_observation_without_value_is_skipped():
    observations = [obs("v", "8867-4", "2026-11-10", valueQuantity=qty(88, "/min")),
                    obs("n", "8867-4", "2026-11-20", dataAbsentReason={"text": "not measured"})]
    assert latest_observation(observations, HR, TODAY, 30).reference == "Observation/v"


def test_comparator_and_coded_values():
    creat = obs("c", "2160-0", "2026-11-20", valueQuantity={**qty(0.5, "mg/dL"), "comparator": "<"})
    found = latest_observation([creat], frozenset({(LOINC, "2160-0")}), TODAY, None)
    assert (found.value, found.comparator) == (0.5, "<")
    assert "<0.5 mg/dL" in found.evidence
    preg = obs("p", "82810-3", "2026-11-20", valueCodeableConcept={"coding": [{"system": LOINC, "code": "LA15173-0", "display": "Pregnant"}]})
    found = latest_observation([preg], frozenset({(LOINC, "82810-3")}), TODAY, None)
    assert found.concept == ((LOINC, "LA15173-0", "Pregnant"),)
    assert "Pregnant on 2026-11-20" in found.evidence


def test_value_in_a_component():
    vitals = {"resourceType": "Observation", "id": "vs", "status": "final", "code": {"text": "vitals"},
              "effectiveDateTime": "2026-11-20", "component": [{"code": coded("8867-4"), "valueQuantity": qty(101, "/min")}]}
    assert latest_observation([vitals], HR, TODAY, 30).value == 101


def panel(oid, when, systolic, diastolic, unit="mm[Hg]"):
    components = []
    if systolic is not None:
        components.append({"code": coded("8480-6"), "valueQuantity": qty(systolic, unit)})
    if diastolic is not None:
        components.append({"code": coded("8462-4"), "valueQuantity": qty(diastolic, unit)})
    return {"resourceType": "Observation", "id": oid, "status": "final", "code": coded("85354-9"),
            "effectiveDateTime": when, "component": components}


def bp(observations, within=30):
    return blood_pressure(observations, PANEL, SYS, DIA, TODAY, within)


def test_blood_pressure_panel():
    result = bp([panel("old", "2026-11-01", 150, 90), panel("x", "2026-11-20", 172, 96)])
    assert (result.systolic, result.diastolic, result.date) == (172, 96, date(2026, 11, 20))
    assert result.evidence == "BP 172/96 mmHg on 2026-11-20"
    assert result.references == ("Observation/x",)


def test_blood_pressure_separate_observations_newest_of_each():
    observations = [
        obs("s1", "8480-6", "2026-11-21", valueQuantity=qty(165, "mm[Hg]")),
        obs("d1", "8462-4", "2026-11-18", valueQuantity=qty(101, "mm[Hg]")),
        obs("s0", "8480-6", "2026-11-10", valueQuantity=qty(120, "mm[Hg]")),
        panel("p", "2026-11-15", 130, 80),
    ]
    result = bp(observations)
    assert (result.systolic, result.diastolic) == (165, 101)
    assert (result.systolic_date, result.diastolic_date, result.date) == (date(2026, 11, 21), date(2026, 11, 18), date(2026, 11, 21))
    assert result.evidence == (
        "BP systolic 165 mmHg on 2026-11-21, diastolic 101 mmHg on 2026-11-18"
    )


def test_blood_pressure_one_side_only():
    result = bp([panel("p", "2026-11-20", None, 104)])
    assert (result.systolic, result.diastolic) == (None, 104)
    assert "no systolic reading" in result.evidence


def test_blood_pressure_window_units_and_status():
    assert bp([panel("p", "2026-10-01", 180, 110)]) is None
    assert bp([panel("p", "2026-11-20", 180, 110, unit="cm")]) is None
    assert bp([{**panel("p", "2026-11-20", 180, 110), "status": "cancelled"}]) is None
    assert bp([panel("p", "2026-11-20", 24, 14, unit="kPa")]).systolic == pytest.approx(180.01, abs=0.01)
    assert bp([]) is None


def condition(clinical=None, verification=None, **fields):
    resource = {"resourceType": "Condition", "id": "c"}
    if clinical is not None:
        resource["clinicalStatus"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": clinical}]}
    if verification is not None:
        resource["verificationStatus"] = {"coding": [{"code": verification}]}
    return {**resource, **fields}


@pytest.mark.parametrize(("clinical", "verification", "active_only", "with_inactive"), [
    (None, None, True, True),
    ("active", None, True, True),
    ("recurrence", "confirmed", True, True),
    ("relapse", "provisional", True, True),
    ("inactive", None, False, True),
    ("remission", None, False, True),
    ("resolved", "confirmed", False, True),
    ("active", "refuted", False, False),
    ("active", "entered-in-error", False, False),
    ("resolved", "refuted", False, False),
    ("bogus", None, False, False),
])
def test_condition_counts(clinical, verification, active_only, with_inactive):
    resource = condition(clinical, verification)
    assert condition_counts(resource, include_inactive=False) is active_only
    assert condition_counts(resource, include_inactive=True) is with_inactive


def test_condition_status_by_text_and_odd_input():
    assert condition_counts({"resourceType": "Condition", "clinicalStatus": {"text": "Active"}}, include_inactive=False)
    assert not condition_counts({"resourceType": "Observation"}, include_inactive=True)
    assert not condition_counts(None, include_inactive=True)
    assert not condition_counts("Condition", include_inactive=True)


def test_condition_dates():
    assert condition_date(condition(onsetDateTime="2026-10-01T10:00:00Z", recordedDate="2026-10-05")) == date(2026, 10, 1)
    assert condition_date(condition(onsetPeriod={"start": "2026-09"}, recordedDate="2026-10-05")) == date(2026, 9, 1)
    assert condition_date(condition(recordedDate="2026-10-05")) == date(2026, 10, 5)
    assert condition_date(condition(onsetString="last spring")) is None
    assert condition_dates(condition(onsetDateTime="2026-10-01", recordedDate="2026-10-05")) == (date(2026, 10, 1), date(2026, 10, 5))
    assert condition_date(None) is None


@pytest.mark.parametrize(("verification", "counts"), [(None, True), ("confirmed", True), ("unconfirmed", True),
                                                      ("refuted", False), ("entered-in-error", False)])
def test_allergy_counts(verification, counts):
    allergy = {"resourceType": "AllergyIntolerance", "id": "a"}
    if verification:
        allergy["verificationStatus"] = {"coding": [{"code": verification}]}
    assert allergy_counts(allergy) is counts


def test_allergy_odd_input():
    assert not allergy_counts(None)
    assert not allergy_counts({"resourceType": "Condition"})


@pytest.mark.parametrize(("status", "counts"), [
    ({"coding": [{"system": "urn:oid:1.2.3", "code": "A", "display": "Active"}]}, True),
    ({"coding": [{"system": "urn:oid:1.2.3", "code": "A"}], "text": "Active"}, True),
    ({"coding": [{"system": "urn:oid:1.2.3", "code": "R"}], "text": "Resolved"}, False),
    # By code first: a status code wins over a text that says something else.
    ({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "resolved"}], "text": "Active"}, False),
])
def test_a_status_is_read_by_code_then_by_text_or_display(status, counts):
    """clinical-rules.md, coded answers: by code first, then by text or display, coded or not."""
    assert condition_counts({"resourceType": "Condition", "clinicalStatus": status}, include_inactive=False) is counts


def test_a_local_verification_code_with_the_text_refuted_does_not_count():
    refuted = {"coding": [{"system": "urn:oid:1.2.3", "code": "R"}], "text": "Refuted"}
    assert not condition_counts({"resourceType": "Condition", "verificationStatus": refuted}, include_inactive=True)
