"""Property tests: no clinical function raises on arbitrary JSON-like input.

The generated values use the FHIR field names and typical values the functions read, so the
malformed data reaches deep into each function instead of being rejected at the first key.
"""

import copy
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_module.engine.clinical import (
    BloodPressure,
    DoseResult,
    DoseUnknown,
    MedicationConcepts,
    ObservationValue,
    RenalCodes,
    RenalResult,
    TherapyStatus,
    ValueSetIndex,
    age_years,
    allergy_counts,
    blood_pressure,
    condition_counts,
    condition_date,
    contained_resolver,
    creatinine_mg_dl,
    daily_dose,
    days_in_period,
    is_unit_dose,
    latest_observation,
    mass_mg,
    medication_concepts,
    parse_fhir_date,
    renal_function,
    resources_resolver,
    therapy_status,
    weight_kg,
)

KEYS = [
    "resourceType", "id", "status", "dosageInstruction", "doseAndRate", "doseQuantity", "doseRange", "high", "low",
    "value", "unit", "code", "system", "timing", "repeat", "frequency", "frequencyMax", "period", "periodMax",
    "periodUnit", "when", "timeOfDay", "event", "text", "sequence", "type", "coding", "display",
    "effectiveDateTime", "effectiveInstant", "effectivePeriod", "start", "end", "issued", "valueQuantity",
    "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger", "comparator", "component", "birthDate",
    "gender", "boundsPeriod", "dispenseRequest", "validityPeriod", "authoredOn", "meta", "lastUpdated",
    "medicationCodeableConcept", "medicationReference", "medication", "concept", "reference", "contained",
    "ingredient", "item", "itemCodeableConcept", "itemReference", "clinicalStatus", "verificationStatus",
    "onsetDateTime", "onsetPeriod", "recordedDate", "url", "compose", "include", "exclude", "filter", "property",
    "op", "valueSet", "extension", "expansion", "contains", "doNotPerform", "resource", "fullUrl",
]
WORDS = [
    "MedicationRequest", "MedicationStatement", "Medication", "Observation", "Patient", "Condition",
    "AllergyIntolerance", "ValueSet", "active", "stopped", "completed", "on-hold", "final", "preliminary",
    "entered-in-error", "refuted", "resolved", "female", "male", "mg", "g", "mcg", "{capsule}", "1", "d", "h",
    "wk", "mo", "kg", "[lb_av]", "mg/dL", "umol/L", "mL/min", "mm[Hg]", "<", ">", "BID", "Q8H", "twice daily",
    "2026-11-20", "2026-11", "2026", "1959-05-01", "2026-11-20T10:00:00Z", "2027-01-01", "#m", "Medication/m", "m",
    "http://loinc.org", "2164-2", "2160-0", "29463-7", "98979-8", "8480-6", "8462-4", "85354-9",
    "http://hl7.org/fhir/sid/icd-10-cm", "I63", "F32.1", "is-a", "regex", "descendent-of", "=", "concept",
    "F32.(", "http://example.org/vs", "http://fhir-module.org/fhir/StructureDefinition/recognition-name",
    "sertraline", "ordered",
]
LEAVES = (
    st.none() | st.booleans() | st.integers(-10**6, 10**12) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12) | st.sampled_from(WORDS)
)
JSON = st.recursive(
    LEAVES,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), children, max_size=6),
    max_leaves=20,
)
RESOURCE = st.dictionaries(st.sampled_from(KEYS), JSON, max_size=8)
ANYTHING = RESOURCE | JSON
MANY = st.lists(ANYTHING, max_size=5) | JSON
TODAY = date(2026, 11, 26)
LOINC = "http://loinc.org"
CODES = RenalCodes(
    crcl=frozenset({(LOINC, "2164-2")}), creatinine_mass=frozenset({(LOINC, "2160-0")}),
    creatinine_molar=frozenset({(LOINC, "14682-9")}), weight=frozenset({(LOINC, "29463-7")}),
    egfr=frozenset({(LOINC, "98979-8")}),
)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(ANYTHING, ANYTHING)
def test_units_and_dates(value, unit):
    for convert in (mass_mg, weight_kg, creatinine_mg_dl, days_in_period):
        result = convert(value, unit)
        assert result is None or isinstance(result, float)
    assert isinstance(is_unit_dose(unit), bool)
    assert parse_fhir_date(value) is None or isinstance(parse_fhir_date(value), date)
    assert age_years(value, TODAY) is None or age_years(value, TODAY) >= 0


@SETTINGS
@given(ANYTHING, JSON)
def test_daily_dose(order, strength):
    result = daily_dose(order, lambda _request: strength)
    assert isinstance(result, (DoseResult, DoseUnknown))
    if isinstance(result, DoseResult):
        assert result.mg_per_day > 0 and result.administrations_per_day >= 1 and result.evidence


@SETTINGS
@given(MANY, ANYTHING)
def test_renal_and_observations(observations, patient):
    result = renal_function(observations, patient, TODAY, CODES)
    assert result is None or (isinstance(result, RenalResult) and result.ml_min > 0)
    found = latest_observation(observations, CODES.crcl | CODES.weight, TODAY, 365)
    assert found is None or isinstance(found, ObservationValue)
    bp = blood_pressure(observations, frozenset({(LOINC, "85354-9")}), frozenset({(LOINC, "8480-6")}),
                        frozenset({(LOINC, "8462-4")}), TODAY, 30)
    assert bp is None or isinstance(bp, BloodPressure)


@SETTINGS
@given(ANYTHING)
def test_timeline_conditions_allergies(resource):
    status = therapy_status(resource, TODAY)
    assert isinstance(status, TherapyStatus) and status.evidence
    assert not (status.current and status.ended)
    assert isinstance(condition_counts(resource, include_inactive=True), bool)
    assert condition_date(resource) is None or isinstance(condition_date(resource), date)
    assert isinstance(allergy_counts(resource), bool)


@SETTINGS
@given(ANYTHING, MANY)
def test_medication_concepts(resource, bundle):
    resolve = resources_resolver(bundle if isinstance(bundle, list) else [])
    concepts = medication_concepts(resource, lambda ref: contained_resolver(resource)(ref) or resolve(ref))
    assert isinstance(concepts, MedicationConcepts)
    assert all(isinstance(name, str) for name in concepts.names)


@SETTINGS
@given(MANY, ANYTHING, ANYTHING)
def test_valueset_index(valuesets, system, code):
    index = ValueSetIndex(valuesets if isinstance(valuesets, list) else [])
    for url in index.urls + ("http://example.org/vs",):
        assert isinstance(index.contains(url, system, code), bool)
        index.match(url, code)
        index.match(url, [system, code])
        assert isinstance(index.names(url), tuple)


# -- valid resources with one field replaced by anything ----------------------------------------

ORDER = {
    "resourceType": "MedicationRequest", "id": "o", "status": "active", "authoredOn": "2026-11-01",
    "contained": [{"resourceType": "Medication", "id": "m", "code": {"coding": [{"system": "s", "code": "1", "display": "x"}]},
                   "ingredient": [{"itemReference": {"reference": "#m"}}, {"itemCodeableConcept": {"text": "y"}}]}],
    "medicationReference": {"reference": "#m", "display": "x 40 mg"},
    "dispenseRequest": {"validityPeriod": {"start": "2026-11-01", "end": "2027-11-01"}},
    "dosageInstruction": [
        {"sequence": 1, "text": "twice daily",
         "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d", "when": ["MORN"], "timeOfDay": ["08:00:00"],
                               "boundsPeriod": {"start": "2026-11-01", "end": "2026-12-01"}},
                    "code": {"coding": [{"code": "BID"}], "text": "twice daily"}, "event": ["2026-11-02T08:00:00Z"]},
         "doseAndRate": [{"type": {"coding": [{"code": "ordered"}]}, "doseQuantity": {"value": 2, "unit": "capsule", "code": "{capsule}"}},
                         {"doseRange": {"high": {"value": 40, "unit": "mg"}}}]},
        {"sequence": 2, "doseAndRate": [{"doseQuantity": {"value": 40, "unit": "mg"}}]},
    ],
}
OBSERVATIONS = [
    {"resourceType": "Observation", "id": "cr", "status": "final", "code": {"coding": [{"system": LOINC, "code": "2160-0"}]},
     "effectiveDateTime": "2026-11-20", "valueQuantity": {"value": 2.1, "unit": "mg/dL", "comparator": "<"}},
    {"resourceType": "Observation", "id": "wt", "status": "final", "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
     "effectivePeriod": {"start": "2026-11-01", "end": "2026-11-02"}, "valueQuantity": {"value": 154, "code": "[lb_av]"}},
    {"resourceType": "Observation", "id": "bp", "status": "final", "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
     "issued": "2026-11-20T10:00:00Z", "component": [
         {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": {"value": 170, "code": "mm[Hg]"}},
         {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": {"value": 95, "code": "mm[Hg]"}}]},
]
PATIENT = {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1959-05-01"}
VALUESET = {
    "resourceType": "ValueSet", "url": "http://example.org/vs",
    "extension": [{"url": "http://fhir-module.org/fhir/StructureDefinition/recognition-name", "valueString": "x"}],
    "compose": {"include": [{"system": "s", "concept": [{"code": "1"}]},
                            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "filter": [{"property": "concept", "op": "is-a", "value": "I63"}]},
                            {"valueSet": ["http://example.org/vs"]}],
                "exclude": [{"system": "s", "filter": [{"property": "concept", "op": "regex", "value": "9.*"}]}]},
    "expansion": {"contains": [{"system": "s", "code": "2", "contains": [{"system": "s", "code": "3"}]}]},
}


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))


def mutated(document):
    """The document with one field (at any depth) replaced by arbitrary JSON."""
    paths = [p for p in _paths(document) if p]

    @st.composite
    def build(draw):
        path = draw(st.sampled_from(paths))
        replacement = draw(JSON)
        result = copy.deepcopy(document)
        target = result
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = replacement
        return result

    return build()


@SETTINGS
@given(mutated(ORDER))
def test_mutated_order(order):
    result = daily_dose(order, lambda _request: 40.0)
    assert isinstance(result, (DoseResult, DoseUnknown))
    assert isinstance(therapy_status(order, TODAY), TherapyStatus)
    assert isinstance(medication_concepts(order, contained_resolver(order)), MedicationConcepts)


@SETTINGS
@given(mutated({"observations": OBSERVATIONS, "patient": PATIENT}))
def test_mutated_observations(chart):
    observations, patient = chart.get("observations"), chart.get("patient")
    result = renal_function(observations, patient, TODAY, CODES)
    assert result is None or isinstance(result, RenalResult)
    bp = blood_pressure(observations, frozenset({(LOINC, "85354-9")}), frozenset({(LOINC, "8480-6")}),
                        frozenset({(LOINC, "8462-4")}), TODAY, 30)
    assert bp is None or isinstance(bp, BloodPressure)


@SETTINGS
@given(mutated(VALUESET))
def test_mutated_valueset(valueset):
    index = ValueSetIndex([valueset])
    for system, code in (("s", "1"), ("s", "3"), ("http://hl7.org/fhir/sid/icd-10-cm", "I63.9")):
        assert isinstance(index.contains("http://example.org/vs", system, code), bool)
    index.match("http://example.org/vs", {"text": "x 40 mg"})


def test_unmutated_fixtures_are_meaningful():
    """The fixtures above compute real results, so a mutation can break something that worked."""
    assert isinstance(daily_dose(ORDER, lambda _request: 40.0), DoseResult)
    assert renal_function(OBSERVATIONS, PATIENT, TODAY, CODES).method == "cockcroft-gault"
    assert blood_pressure(OBSERVATIONS, frozenset({(LOINC, "85354-9")}), frozenset({(LOINC, "8480-6")}),
                          frozenset({(LOINC, "8462-4")}), TODAY, 30).systolic == 170
    index = ValueSetIndex([VALUESET])
    assert index.contains("http://example.org/vs", "s", "3") and index.contains("http://example.org/vs", "s", "1")
    assert index.match("http://example.org/vs", {"text": "x 40 mg"}).how == "name"
