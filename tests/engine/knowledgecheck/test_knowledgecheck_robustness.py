"""The knowledge check reads any JSON it is given: a finding or nothing, never a crash."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_module.engine.knowledgecheck import check_knowledge
from fhir_module.fhir.builtin import module_resources

RESOURCES = [copy.deepcopy(r) for r in module_resources("levomilnacipran") if r["resourceType"] in
             ("PlanDefinition", "ActivityDefinition", "ValueSet", "CodeSystem", "Library")]
PLAN = next(r for r in RESOURCES if r["resourceType"] == "PlanDefinition")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, prefix + (index,))
    return found


PLAN_PATHS = [p for p in _paths(PLAN) if p]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), replacement=json_values)
def test_any_value_anywhere_in_a_plan_gives_findings_not_a_crash(data: st.DataObject, replacement: Any) -> None:
    path = data.draw(st.sampled_from(PLAN_PATHS))
    plan = copy.deepcopy(PLAN)
    holder = plan
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = replacement
    findings = check_knowledge([plan, *(r for r in RESOURCES if r is not PLAN)])
    assert all(f.artifact and f.message for f in findings)


@given(st.lists(json_values, max_size=4))
def test_resources_of_any_shape(resources: list[Any]) -> None:
    findings = check_knowledge(resources)
    assert findings and findings[0].artifact == "Bundle"  # no eca-rule PlanDefinition among them
