"""Prefetch template rendering: tokens, user ids, dates, FHIRPath-like paths, encoding, errors."""

from __future__ import annotations

import datetime as dt

import pytest

from fhir_module.api.templates import TemplateError, render_template

TODAY = dt.date(2026, 11, 26)
CONTEXT = {
    "userId": "PractitionerRole/role-1",
    "patientId": "pat-1.x",
    "note": "a b&x=y",
    "encounterId": "enc-7",
    "draftOrders": {
        "resourceType": "Bundle",
        "entry": [
            {"resource": {"resourceType": "MedicationRequest", "id": "mr1",
                          "medicationReference": {"reference": "Medication/m1"}}},
            {"resource": {"resourceType": "ServiceRequest", "id": "sr1"}},
            {"resource": {"resourceType": "MedicationRequest", "id": "mr2"}},
        ],
    },
}


@pytest.mark.parametrize(
    "template, expected",
    [
        ("Patient/{{context.patientId}}", "Patient/pat-1.x"),
        ("Observation?code:text={{context.note}}", "Observation?code:text=a%20b%26x%3Dy"),  # encoded
        ("Encounter/{{ context.encounterId }}", "Encounter/enc-7"),
        ("PractitionerRole?_id={{userPractitionerRoleId}}", "PractitionerRole?_id=role-1"),
        ("Observation?date=gt{{today() - 90 days}}", "Observation?date=gt2026-08-28"),
        ("Appointment?date=lt{{today() + 1 day}}&date=ge{{today()}}", "Appointment?date=lt2026-11-27&date=ge2026-11-26"),
        ("MedicationRequest?_id={{context.draftOrders.entry.resource.ofType(MedicationRequest).id}}",
         "MedicationRequest?_id=mr1,mr2"),
        ("Medication?x={{context.draftOrders.entry.resource.medicationReference.reference}}",
         "Medication?x=Medication%2Fm1"),
        ("Condition?code=http://snomed.info/sct|1,http://snomed.info/sct|2", "Condition?code=http://snomed.info/sct|1,http://snomed.info/sct|2"),
    ],
)
def test_rendering(template: str, expected: str) -> None:
    assert render_template(template, CONTEXT, TODAY) == expected


@pytest.mark.parametrize(
    "template, token, reason",
    [
        ("Patient/{{context.missing}}", "context.missing", "no value"),
        ("Practitioner/{{userPractitionerId}}", "userPractitionerId", "not a Practitioner"),
        ("X?{{context.draftOrders}}", "context.draftOrders", "simple value"),
        ("X?{{context.draftOrders.entry.resource.where(id='x')}}", "context.draftOrders.entry.resource.where(id='x')",
         "unsupported path step"),
        ("X?{{%other.entry}}", "%other.entry", "only context paths"),
        ("X?{{userPatientId}}", "userPatientId", "not a Patient"),
    ],
)
def test_unrenderable_tokens(template: str, token: str, reason: str) -> None:
    with pytest.raises(TemplateError) as error:
        render_template(template, CONTEXT, TODAY)
    assert error.value.token == token and reason in str(error.value)


@pytest.mark.parametrize("value", [".", "..", "...", "p 1", "a/b", "x?_count=100000", "é", "a" * 65])
@pytest.mark.parametrize("template", ["Patient/{{context.patientId}}", "Condition?patient={{context.patientId}}"])
def test_ids_must_be_fhir_ids(template: str, value: str) -> None:
    """`Patient/.` once read `GET [base]/Patient/`: every patient, with the user's token."""
    with pytest.raises(TemplateError, match="is not a FHIR id"):
        render_template(template, {"patientId": value}, TODAY)


def test_a_path_takes_one_id_and_any_value_in_the_path_must_be_an_id() -> None:
    with pytest.raises(TemplateError, match="several values"):
        render_template("MedicationRequest/{{context.draftOrders.entry.resource.id}}", CONTEXT, TODAY)
    with pytest.raises(TemplateError, match="not a FHIR id"):
        render_template("Observation/{{context.note}}", CONTEXT, TODAY)


def test_user_tokens_need_a_typed_user_id() -> None:
    with pytest.raises(TemplateError, match="Type/id"):
        render_template("Practitioner/{{userPractitionerId}}", {"userId": "12"}, TODAY)
    assert render_template("Practitioner/{{userPractitionerId}}",
                           {"userId": "https://ehr.example.org/fhir/Practitioner/p9"}, TODAY) == "Practitioner/p9"
    with pytest.raises(TemplateError):
        render_template("Patient/{{context.patientId}}", {"patientId": ""}, TODAY)
