"""What the engine works out once and reuses, and that reusing it gives what working it out anew
would: literal variables, what it reads of each action's JSON, and each rule's scope within one
request."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fhir_module.engine import Engine
from fhir_module.engine.actions import EXT_VARIABLE, ActionReading, action_type, applicability, ext, parts, variables
from fhir_module.engine.apply import PlanApplier
from fhir_module.engine.chart import Chart
from fhir_module.engine.expressions import Expression, compiled
from fhir_module.engine.scope import Scope
from tests.engine.fhirpath.test_compiler_differential import knowledge_expressions

TODAY = date(2026, 11, 26)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.default()


@pytest.mark.parametrize("text", ["120", "0.5", "'dose-limit'", "true", "false", "{}", "1.50"])
def test_a_literal_is_worked_out_once_as_fhirpathpy_gives_it(text: str) -> None:
    expression = Expression(text)
    assert expression.constant is not None
    assert list(expression.constant) == expression.reference({}, {})
    first = expression.evaluate({"any": "resource"}, {})
    assert first == list(expression.constant)
    first.append("changed by a reader")
    assert expression.evaluate({}, {}) == list(expression.constant)  # each evaluation gets its own list


def test_only_literals_are_constants(engine: Engine) -> None:
    texts = knowledge_expressions(engine)
    constants = [text for text in texts if compiled(text).constant is not None]
    assert constants and all(compiled(text).constant == tuple(compiled(text).reference({}, {})) for text in constants)
    assert compiled("%limit").constant is None and compiled("-1").constant is None  # not a literal node


def test_a_scope_holds_its_literal_variables_and_values_given_win() -> None:
    scope = Scope(definitions={"limit": "120", "twice": "%limit + %limit"}, values={"order": [{}]})
    assert scope.values["limit"] == [120] and "twice" not in scope.values
    assert scope.value("twice") == [240]
    given = Scope(definitions={"limit": "120"}, values={"limit": [7]})
    assert given.value("limit") == [7]
    assert Scope(definitions={"limit": "120"}).reads([compiled("%limit")]) != frozenset()


def _actions(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found, stack = [], list(plan.get("action") or [])
    while stack:
        action = stack.pop()
        found.append(action)
        stack.extend(action.get("action") or [])
    return found


def test_what_is_read_of_an_action_once_is_what_its_json_says(engine: Engine) -> None:
    actions = [action for plan in engine.kb.plan_definitions for action in _actions(plan)]
    assert len(actions) > 50
    for action in actions:
        reading = engine.kb.actions.of(action)
        assert reading is engine.kb.actions.of(action)
        assert {name: e.text for name, e in reading.definitions.items()} == variables(action)
        assert [e.text for e in reading.conditions] == applicability(action) == reading.applicability
        assert reading.type == action_type(action)
        assert reading.template == next((parts(t) for t in ext(action, "/card-template")), {})
        assert reading.notes == [parts(note) for note in ext(action, "/card-note")]


def _applier(engine: Engine) -> tuple[PlanApplier, Scope]:
    chart = Chart.from_request({"patientId": "p1", "draftOrders": {"resourceType": "Bundle", "entry": []}}, {})
    applier = PlanApplier(engine.kb, chart, TODAY, {"patientId": "p1"}, "hook-instance")
    return applier, applier.request_scope.child(values={"order": [{}], "firedTopics": []})


def test_a_rules_scope_is_made_once_per_parent_in_a_request(engine: Engine) -> None:
    applier, order_scope = _applier(engine)
    kind = engine.kb.plan_definitions[0]["action"][0]
    rule = next(child for child in kind["action"] if variables(child))
    kind_scope = applier._scope(kind, order_scope)
    assert applier._scope(kind, order_scope) is kind_scope
    assert applier._scope(rule, kind_scope) is applier._scope(rule, kind_scope)
    assert applier._scope(rule, order_scope) is not applier._scope(rule, kind_scope)  # another parent
    other, other_order = _applier(engine)
    assert other._scope(kind, other_order) is not kind_scope  # never across requests


def test_a_rule_whose_variables_read_the_fired_topics_gets_a_new_scope_each_time(engine: Engine) -> None:
    """Its variables' values depend on which cards fired before they are read."""
    applier, order_scope = _applier(engine)
    action = {"id": "reads-fired", "extension": [
        {"url": EXT_VARIABLE, "valueExpression": {"language": "text/fhirpath", "name": "fired",
                                                  "expression": "%firedTopics.count()"}}]}
    assert ActionReading(action).reads_fired_topics
    first = applier._scope(action, order_scope)
    assert first.value("fired") == [0]
    order_scope.values["firedTopics"].append("dose-limit")
    again = applier._scope(action, order_scope)
    assert again is not first and again.value("fired") == [1]
