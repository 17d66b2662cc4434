"""Which prefetch a request needs: the data of the order kinds its checked orders are.

The knowledge declares what each kind reads (PlanDefinition action `input`); the engine refuses
knowledge whose expressions read more than that, and asks for a kind's data whenever it cannot tell
without the chart whether the kind applies.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from fhir_module.engine import Engine, KnowledgeBase, KnowledgeLoadError
from fhir_module.engine.expressions import CHART_READS, chart_types_read
from fhir_module.engine.functions import MODULE_FUNCTIONS
from fhir_module.fhir.builtin import built_in_resources
from tests.api.helpers import scenario_request

ALL_KEYS = ["patient", "medicationRequests", "medicationStatements", "conditions", "allergyIntolerances", "observations"]


def _resources() -> list[dict[str, Any]]:
    return copy.deepcopy(built_in_resources())


def _kind(resources: list[dict[str, Any]], plan_id: str, kind_id: str) -> dict[str, Any]:
    plan = next(r for r in resources if r["resourceType"] == "PlanDefinition" and r["id"] == plan_id)
    return next(a for a in plan["action"] if a["id"] == kind_id)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.default()


@pytest.fixture(scope="module")
def discovery(engine: Engine) -> dict[str, Any]:
    return {"services": engine.services()}


def test_every_function_says_what_it_reads() -> None:
    assert set(CHART_READS) == set(MODULE_FUNCTIONS)


def test_chart_types_read_follows_functions_and_the_patient() -> None:
    assert chart_types_read("%order.medicationMatch('x')") == set()
    assert chart_types_read(["therapies('x')", {"a": "%patient.ageYears() > 3"}]) == {
        "MedicationRequest", "MedicationStatement", "Patient"}
    assert chart_types_read({"text": "{{ conditions('y').first().text }}"}) == {"Condition"}


def test_a_kind_reading_more_than_its_input_is_refused() -> None:
    resources = _resources()
    maoi = _kind(resources, "levomilnacipran-order-select", "maoi-order")
    rule = maoi["action"][0]
    rule["condition"][0]["expression"]["expression"] += " and conditions('stroke').exists()"
    with pytest.raises(KnowledgeLoadError, match="Condition"):
        Engine(KnowledgeBase(resources))


def test_needs_follow_the_checked_orders(engine: Engine, discovery: dict[str, Any]) -> None:
    service_id, levo = scenario_request("pub-max-dose", discovery)
    assert engine.needed_prefetch(service_id, levo) == ALL_KEYS
    maoi_service, maoi = scenario_request("pub-maoi-reverse", discovery)
    assert engine.needed_prefetch(maoi_service, maoi) == ["medicationRequests", "medicationStatements"]
    unrelated = copy.deepcopy(levo)
    order = unrelated["context"]["draftOrders"]["entry"][0]["resource"]
    order["medicationCodeableConcept"] = {"text": "Amoxicillin 500 mg capsule"}
    assert engine.needed_prefetch(service_id, unrelated) == []


def test_kinds_that_may_apply_decide_whether_anything_is_evaluated(engine: Engine, discovery: dict[str, Any]) -> None:
    """The API answers no cards without evaluating again when no kind applies; when one does, its
    prefetch keys are the request's needs (whether or not it reads any)."""
    service_id, levo = scenario_request("pub-max-dose", discovery)
    applying = engine.kinds_that_may_apply(service_id, engine.prepare(service_id, levo))
    assert [kind.action["id"] for kind in applying] == ["levomilnacipran-order"]
    assert engine.prefetch_keys(service_id, applying) == ALL_KEYS == engine.needed_prefetch(service_id, levo)
    unrelated = copy.deepcopy(levo)
    unrelated["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"] = {"text": "Amoxicillin"}
    prepared = engine.prepare(service_id, unrelated)
    assert engine.kinds_that_may_apply(service_id, prepared) == []
    assert engine.evaluate(service_id, unrelated, prepared=prepared) == {"cards": []}


def test_a_kind_whose_applicability_reads_the_chart_is_always_asked_for(discovery: dict[str, Any]) -> None:
    """An edited kind that applies only to adults cannot be judged on the order alone."""
    resources = _resources()
    for plan_id in ("levomilnacipran-order-select", "levomilnacipran-order-sign"):
        kind = _kind(resources, plan_id, "levomilnacipran-order")
        kind["condition"][0]["expression"]["expression"] = "%orderMatch.exists() or %patient.ageYears() >= 18"
    edited = Engine(KnowledgeBase(resources))
    service_id, levo = scenario_request("pub-max-dose", discovery)
    levo["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"] = {"text": "Amoxicillin"}
    assert edited.needed_prefetch(service_id, levo) == ALL_KEYS


def test_a_medication_known_by_nothing_counts_under_every_kind(engine: Engine, discovery: dict[str, Any]) -> None:
    service_id, body = scenario_request("pub-max-dose", discovery)
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order.pop("medicationCodeableConcept")
    order["medicationReference"] = {"reference": "Medication/elsewhere"}
    assert engine.needed_prefetch(service_id, body) == ALL_KEYS
    order["medicationReference"]["display"] = "Amoxicillin 500 mg capsule"
    assert engine.needed_prefetch(service_id, body) == []
    order["medicationReference"]["display"] = "Fetzima 40 mg capsule"
    assert engine.needed_prefetch(service_id, body) == ALL_KEYS


def test_the_exported_bundle_carries_the_narrower_inputs() -> None:
    engine = Engine.from_bundle_file(Path(__file__).resolve().parents[2] / "examples" / "levomilnacipran-r4-collection.json")
    for kinds in engine._kinds.values():
        keys = {kind.action["id"]: kind.keys for kind in kinds}
        assert keys["maoi-order"] == ("medicationRequests", "medicationStatements")
