"""The hook requests the benchmarks send: realistic charts, codes from the module's terminology only.

- `relevant()`: order-select of a levomilnacipran draft on a chart of about 20 resources; two cards
  (a serotonergic co-medication and the starting-dose titration).
- `unrelated()`: the same chart, the draft is an SSRI: no order kind of the module matches, no card.
- `scaled(n)`: the relevant request with a chart of n prefetched resources (older labs, vitals,
  ended prescriptions, conditions, allergies), the same two cards.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
PATIENT = "bench-patient"
SERVICE = "levomilnacipran-order-select"

# (code, display) pairs from fhir_module/data/terminology/rxnorm.csv.
LEVOMILNACIPRAN_80 = ("1433239", "24 HR levomilnacipran 80 MG Extended Release Oral Capsule")
SERTRALINE = ("36437", "Sertraline")
IBUPROFEN = ("5640", "Ibuprofen")
WARFARIN = ("11289", "warfarin")
# (code, display, unit, value) from fhir_module/data/terminology/codes.csv.
VITALS = [
    ("8867-4", "Heart rate", "/min", 72),
    ("29463-7", "Body weight", "kg", 70),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.9),
    ("8302-2", "Body height", "cm", 170),
]
CONDITIONS = [("370143000", "Major depressive disorder"), ("59621000", "Essential hypertension")]


def _subject() -> dict[str, str]:
    return {"reference": f"Patient/{PATIENT}"}


def medication_request(rid: str, drug: tuple[str, str], *, status: str = "active", mg: float = 40,
                       authored: date | None = None, ended: date | None = None) -> dict[str, Any]:
    repeat: dict[str, Any] = {"frequency": 1, "period": 1, "periodUnit": "d"}
    if ended is not None:
        repeat["boundsPeriod"] = {"start": (ended - timedelta(days=60)).isoformat(), "end": ended.isoformat()}
    return {
        "resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order", "subject": _subject(),
        "authoredOn": (authored or date.today()).isoformat(),
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": drug[0], "display": drug[1]}], "text": drug[1]},
        "dosageInstruction": [{
            "timing": {"repeat": repeat},
            "route": {"coding": [{"system": SNOMED, "code": "26643006", "display": "Oral route"}]},
            "doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg", "system": UCUM, "code": "mg"}}],
        }],
    }


def observation(rid: str, code: str, display: str, unit: str, value: float, day: date) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "id": rid, "status": "final", "subject": _subject(),
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "effectiveDateTime": f"{day.isoformat()}T09:30:00Z",
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def blood_pressure(rid: str, day: date, systolic: float = 122, diastolic: float = 78) -> dict[str, Any]:
    component = lambda code, name, value: {  # noqa: E731
        "code": {"coding": [{"system": LOINC, "code": code, "display": name}]},
        "valueQuantity": {"value": value, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}}
    return {
        "resourceType": "Observation", "id": rid, "status": "final", "subject": _subject(),
        "code": {"coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure panel with all children optional"}]},
        "effectiveDateTime": f"{day.isoformat()}T09:30:00Z",
        "component": [component("8480-6", "Systolic blood pressure", systolic),
                      component("8462-4", "Diastolic blood pressure", diastolic)],
    }


def condition(rid: str, code: str, display: str, onset: date) -> dict[str, Any]:
    return {
        "resourceType": "Condition", "id": rid, "subject": _subject(),
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display},
        "onsetDateTime": onset.isoformat(),
    }


def allergy(rid: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "AllergyIntolerance", "id": rid, "patient": _subject(),
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
        "code": {"text": text},
    }


def _filler(index: int, today: date) -> dict[str, Any]:
    """The index-th resource of a long chart: mostly older vitals and labs, then ended prescriptions,
    conditions and allergies; none of it changes the cards of the relevant request."""
    day = today - timedelta(days=400 + index)  # older than every look-back window of the rules
    kind = index % 10
    if kind < 5:
        code, display, unit, value = VITALS[index % len(VITALS)]
        return observation(f"obs-{index}", code, display, unit, value, day)
    if kind < 6:
        return blood_pressure(f"bp-{index}", day)
    if kind < 8:
        drug = (IBUPROFEN, WARFARIN, SERTRALINE)[index % 3]
        return medication_request(f"old-{index}", drug, status="stopped", authored=day - timedelta(days=60), ended=day)
    if kind < 9:
        return condition(f"cond-{index}", *CONDITIONS[0], onset=day)
    return allergy(f"allergy-{index}", ("Penicillin", "Latex", "Peanut")[index % 3])


def _chart(today: date) -> list[dict[str, Any]]:
    """About 20 resources: the patient, an SSRI and two ended drugs, recent vitals and labs, conditions."""
    recent = today - timedelta(days=20)
    return [
        {"resourceType": "Patient", "id": PATIENT, "gender": "female", "birthDate": "1979-03-14"},
        medication_request("sertraline", SERTRALINE, mg=50, authored=today - timedelta(days=90)),
        medication_request("ibuprofen-old", IBUPROFEN, status="stopped", mg=400,
                           authored=today - timedelta(days=200), ended=today - timedelta(days=150)),
        medication_request("warfarin-old", WARFARIN, status="completed", mg=5,
                           authored=today - timedelta(days=300), ended=today - timedelta(days=240)),
        *(observation(f"vital-{n}", code, display, unit, value, recent - timedelta(days=30 * n))
          for n in range(2) for code, display, unit, value in VITALS),
        observation("crcl", "2164-2", "Creatinine renal clearance", "mL/min", 95, recent),
        blood_pressure("bp-1", recent),
        blood_pressure("bp-2", recent - timedelta(days=30)),
        condition("mdd", *CONDITIONS[0], onset=today - timedelta(days=120)),
        condition("htn", *CONDITIONS[1], onset=today - timedelta(days=900)),
        allergy("allergy-penicillin", "Penicillin"),
        allergy("allergy-latex", "Latex"),
    ]


def _request(draft: dict[str, Any], chart: list[dict[str, Any]]) -> dict[str, Any]:
    by_key = {"patient": None, "medicationRequests": [], "medicationStatements": [], "conditions": [],
              "allergyIntolerances": [], "observations": []}
    keys = {"MedicationRequest": "medicationRequests", "Condition": "conditions",
            "AllergyIntolerance": "allergyIntolerances", "Observation": "observations"}
    for resource in chart:
        if resource["resourceType"] == "Patient":
            by_key["patient"] = resource
        else:
            by_key[keys[resource["resourceType"]]].append(resource)
    bundle = lambda resources: {"resourceType": "Bundle", "type": "searchset", "total": len(resources),  # noqa: E731
                                "entry": [{"fullUrl": f"https://ehr.example.org/fhir/{r['resourceType']}/{r['id']}",
                                           "resource": r} for r in resources]}
    return {
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "hook": "order-select",
        "fhirServer": "https://ehr.example.org/fhir",
        "context": {"userId": "Practitioner/bench", "patientId": PATIENT,
                    "selections": [f"MedicationRequest/{draft['id']}"],
                    "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": draft}]}},
        "prefetch": {key: value if key == "patient" else bundle(value) for key, value in by_key.items()},
    }


def relevant(today: date | None = None) -> dict[str, Any]:
    today = today or date.today()
    draft = medication_request("draft", LEVOMILNACIPRAN_80, status="draft", mg=80)
    return _request(draft, _chart(today))


def unrelated(today: date | None = None) -> dict[str, Any]:
    today = today or date.today()
    draft = medication_request("draft", SERTRALINE, status="draft", mg=100)
    return _request(draft, _chart(today))


def scaled(resources: int, today: date | None = None) -> dict[str, Any]:
    """The relevant request with `resources` prefetched resources (the ~20 of the chart, then filler)."""
    today = today or date.today()
    chart = _chart(today)[:resources]
    chart += [_filler(index, today) for index in range(resources - len(chart))]
    draft = medication_request("draft", LEVOMILNACIPRAN_80, status="draft", mg=80)
    return _request(draft, chart)


def prefetched(request: dict[str, Any]) -> int:
    """How many resources a request's prefetch holds."""
    return sum(len(v.get("entry", [])) if v.get("resourceType") == "Bundle" else 1 for v in request["prefetch"].values())
