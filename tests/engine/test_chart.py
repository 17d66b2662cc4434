"""Which resources of a request are the patient's chart."""

from __future__ import annotations

import pytest

from fhir_module.engine.chart import Chart
from fhir_module.engine.errors import RequestError


def _bundle(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def _med(rid: str, reference: str | None) -> dict:
    resource = {"resourceType": "MedicationRequest", "id": rid, "status": "active", "intent": "order"}
    if reference is not None:
        resource["subject"] = {"reference": reference}
    return resource


CONTEXT = {"patientId": "p1", "draftOrders": _bundle()}


def test_relative_absolute_and_versioned_references_belong_to_the_patient() -> None:
    chart = Chart.from_request(CONTEXT, {"meds": _bundle(
        _med("a", "Patient/p1"), _med("b", "https://ehr.example/fhir/Patient/p1"),
        _med("c", "Patient/p1/_history/3"), _med("d", None))})
    assert [r["id"] for r in chart.for_patient("MedicationRequest")] == ["a", "b", "c", "d"]
    assert chart.notes == []


def test_another_patients_resources_are_ignored_and_said() -> None:
    chart = Chart.from_request(CONTEXT, {"meds": _bundle(_med("a", "Patient/p1"), _med("x", "Patient/p2"),
                                                         _med("y", "Patient/p2/_history/1"))})
    assert [r["id"] for r in chart.for_patient("MedicationRequest")] == ["a"]
    assert chart.notes == ["2 resource(s) in the request belong to another patient (Patient/p2) and were ignored."]


def test_a_prefetched_patient_that_is_not_the_context_patient_is_refused() -> None:
    with pytest.raises(RequestError, match="not the context's Patient/p1") as raised:
        Chart.from_request(CONTEXT, {"patient": {"resourceType": "Patient", "id": "p2"}})
    assert raised.value.status == 400


def test_the_context_patient_is_found_among_several() -> None:
    chart = Chart.from_request(CONTEXT, {"patient": {"resourceType": "Patient", "id": "p1", "gender": "male"},
                                         "other": {"resourceType": "Patient", "id": "p9"}})
    assert chart.patient and chart.patient["id"] == "p1"


def test_a_selection_may_name_the_draft_by_its_full_url() -> None:
    draft = _med("d1", "Patient/p1")
    context = {"patientId": "p1", "draftOrders": {"resourceType": "Bundle", "entry": [
        {"fullUrl": "urn:uuid:4b1f6a52-7d8e-4c51-9f0a-2f2b8d1c3e10", "resource": draft}]}}
    chart = Chart.from_request(context, {})
    assert chart.draft("MedicationRequest/d1") is chart.draft("urn:uuid:4b1f6a52-7d8e-4c51-9f0a-2f2b8d1c3e10")
    assert chart.draft("https://ehr.example/fhir/MedicationRequest/d1")["id"] == "d1"
    with pytest.raises(RequestError):
        chart.draft("MedicationRequest/other")


def test_the_patient_is_checked_at_once_and_the_resources_indexed_when_first_asked_for() -> None:
    prefetch = {"patient": {"resourceType": "Patient", "id": "p1"},
                "meds": _bundle(_med("a", "Patient/p1"), _med("x", "Patient/p2"))}
    chart = Chart.from_request(CONTEXT, prefetch)
    assert chart.patient is prefetch["patient"] and not chart.indexed
    assert [r["id"] for r in chart.for_patient("MedicationRequest")] == ["a"] and chart.indexed
    assert chart.notes == ["1 resource(s) in the request belong to another patient (Patient/p2) and were ignored."]
    # Whatever is asked first, the same index: notes, references, types.
    for first in ("notes", "by_reference", "by_type"):
        again = Chart.from_request(CONTEXT, prefetch)
        getattr(again, first)
        assert again.notes == chart.notes and again.by_reference == chart.by_reference
        assert again.by_type == chart.by_type


def test_an_order_no_kind_applies_to_is_judged_without_indexing_the_chart() -> None:
    """The unrelated order-select is answered on its orders alone (issue 10: indexing every
    prefetched resource was most of the engine's cost for it); a wrong patient is still a 400."""
    import sys
    from pathlib import Path

    from fhir_module.engine import Engine

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import workloads

    engine = Engine.default()
    prepared = engine.prepare(workloads.SERVICE, workloads.unrelated())
    assert engine.kinds_that_may_apply(workloads.SERVICE, prepared) == []
    assert not prepared.chart.indexed
    wrong = workloads.unrelated()
    wrong["prefetch"]["patient"] = {**wrong["prefetch"]["patient"], "id": "someone-else"}
    with pytest.raises(RequestError, match="not the context's Patient/"):
        engine.prepare(workloads.SERVICE, wrong)
