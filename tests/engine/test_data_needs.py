"""Which prefetch a request needs: the data of the order kinds its checked orders are.

The knowledge declares what each kind reads (PlanDefinition action `input`); the engine refuses
knowledge whose expressions read more than that, and asks for a kind's data whenever it cannot tell
without the chart whether the kind applies.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings, strategies as st

from fhir_module.engine import Engine, KnowledgeBase, KnowledgeLoadError
from fhir_module.engine.expressions import _CALL, CHART_READS, _strings, chart_types_read
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


# The pattern chart_types_read used before it skipped the inside of names (and strings with no
# "(" or "%"): it must find the same calls and variables in any text.
_PLAIN_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_PLAIN_VARIABLE = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)")


def _plain_chart_types_read(value: Any) -> set[str]:
    found: set[str] = set()
    for text in _strings(value):
        for name in _PLAIN_CALL.findall(text):
            found.update(CHART_READS.get(name, ()))
        for name in _PLAIN_VARIABLE.findall(text):
            found.update({"patient": ("Patient",)}.get(name, ()))
    return found


_NAMES = sorted(CHART_READS) + ["patient", "x1", "_a", "9b"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_NAMES), st.text(alphabet="(%. \t\n19_aZ{}'", max_size=6),
                          st.text(max_size=4)), max_size=30))
@example(["9b", "("])  # a name after digits is called from its first letter
@example(["x1", "therapies", " \n("])
def test_chart_types_read_finds_what_the_plain_scan_finds(parts: list[str]) -> None:
    text = "".join(parts)
    assert chart_types_read(text) == _plain_chart_types_read(text)
    assert _CALL.findall(text) == _PLAIN_CALL.findall(text)


def test_the_knowledge_is_read_as_by_the_plain_scan() -> None:
    actions = [action for resource in _resources() if resource.get("resourceType") == "PlanDefinition"
               for action in resource.get("action") or []]
    texts = [text for action in actions for text in _strings(action)]
    assert actions and [_CALL.findall(text) for text in texts] == [_PLAIN_CALL.findall(text) for text in texts]
    assert [chart_types_read(action) for action in actions] == [_plain_chart_types_read(action) for action in actions]


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
