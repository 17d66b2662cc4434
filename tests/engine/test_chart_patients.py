"""Chart.from_request looks for the chart's Patients without reading every resource into the
index's pairs (engine/chart.py `_patients_into`): it must find exactly the Patients that reading
them finds, in the same order, whatever shape the prefetch has."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_module.engine.chart import Chart, _patients_into, _read_into, _take_each
from fhir_module.engine.errors import RequestError


def patient(pid: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid} if pid is not None else {"resourceType": "Patient"}


def bundle(*entries: Any) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": list(entries)}


def nested(depth: int, inner: Any) -> Any:
    for _ in range(depth):
        inner = bundle({"resource": inner})
    return inner


SHAPES = [
    patient("p1"),
    patient(None),  # no id: a resource all the same
    patient(7),  # an id that is not a string: not a resource
    {"resourceType": 5, "id": "x"},
    "not a resource",
    None,
    bundle({"resource": patient("p1")}, {"resource": patient("p2")}, {"fullUrl": "urn:x", "resource": patient("p3")}),
    bundle("not an entry", {"resource": "not a resource"}, {"resource": patient(7)}, {"nothing": 1}),
    bundle({"resource": {"resourceType": "Observation", "id": "o"}}, {"resource": patient("p4")}),
    {"resourceType": "Bundle", "entry": "not a list"},
    {"resourceType": "Bundle", "id": 3, "entry": [{"resource": patient("p5")}]},  # a Bundle with a bad id
    bundle({"resource": {"resourceType": "Bundle", "id": 3, "entry": [{"resource": patient("p6")}]}}),
    nested(3, patient("deep3")),
    nested(4, patient("deep4")),
    nested(5, patient("deep5")),  # beyond the depth read
    bundle({"resource": bundle({"resource": patient("n1")}, {"resource": patient("n2")})}, {"resource": patient("n3")}),
]


@pytest.mark.parametrize("value", SHAPES)
def test_the_patients_found_are_those_reading_finds(value: Any) -> None:
    pairs: list = []
    _read_into(pairs, value)
    found: list = []
    _patients_into(found, value)
    read = [resource for _, resource in pairs if resource["resourceType"] == "Patient"]
    assert [id(r) for r in found] == [id(r) for r in read]


@pytest.mark.parametrize("value", [*SHAPES, bundle({"fullUrl": 5, "resource": patient("p7")},
                                                   {"fullUrl": "urn:y", "resource": {"resourceType": "Observation"}})])
def test_the_index_takes_the_pairs_reading_reads(value: Any) -> None:
    """The index takes each resource as it reads it (`_take_each`), not from a list of pairs:
    the same pairs, in the same order."""
    pairs: list = []
    _read_into(pairs, value)
    taken: list = []
    _take_each(lambda full_url, resource: taken.append((full_url, resource)), value)
    assert [(url, id(r)) for url, r in taken] == [(url, id(r)) for url, r in pairs]


def test_a_prefetch_naming_another_patient_is_refused_before_any_index() -> None:
    context = {"patientId": "p1", "draftOrders": bundle()}
    with pytest.raises(RequestError, match="Patient/p2"):
        Chart.from_request(context, {"a": nested(2, patient("p2"))})
    chart = Chart.from_request(context, {"a": patient("p1"), "b": bundle({"resource": {"resourceType": "Condition", "id": "c"}})})
    assert chart.patient == patient("p1") and not chart.indexed
    assert [r["id"] for r in chart.by_type["Condition"]] == ["c"]
