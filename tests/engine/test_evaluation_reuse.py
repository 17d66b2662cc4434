"""What the engine works out once and reuses, and that reusing it gives what working it out anew
would: literal variables, what it reads of each action's JSON, and each rule's scope within one
request."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from fhir_module.engine import Engine
from fhir_module.engine.actions import EXT_VARIABLE, ActionReading, action_type, applicability, ext, parts, variables
from fhir_module.engine.apply import PlanApplier
from fhir_module.engine.chart import Chart
from fhir_module.engine.errors import RequestError
from fhir_module.engine.expressions import Expression, compiled
from fhir_module.engine.scope import Scope
from tests.engine.fhirpath.test_compiler_differential import knowledge_expressions
from tests.support.scenarios import module_requests

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
    # A scope given no values holds the constants alone, each scope its own list of each.
    definitions = Scope(definitions={"limit": "120", "low": "30", "twice": "%limit + %limit"}).definitions
    first, second = Scope(definitions=definitions), Scope(definitions=definitions)
    assert first.values == second.values == {"limit": [120], "low": [30]}
    assert first.values["limit"] is not second.values["limit"]


_ROOT_CASES = [
    ({"order": [{"id": "o1", "status": "active"}]}, {}),  # the root given
    ({"order": []}, {}),  # an empty root: expressions see {}
    ({}, {"order": "%draftOrders.first()"}),  # the root is a definition, not yet worked out
]


@pytest.mark.parametrize("values, defined", _ROOT_CASES)
def test_a_definition_and_a_condition_evaluated_once_the_root_is_known_are_what_evaluate_gives(
        values: dict[str, Any], defined: dict[str, str]) -> None:
    """Scope._define and ActionReading.holds call `run` themselves once a scope's root is known;
    a fresh scope evaluating the same text gives the same values."""
    request = Scope(values={"draftOrders": [{"id": "d1", "status": "draft"}], **values})
    texts = {"status": "%order.status", "isActive": "%order.status = 'active'", "none": "%order.missing.exists()",
             "id": "id", **defined}
    action = {"extension": [{"url": EXT_VARIABLE, "valueExpression": {"name": name, "expression": text}}
                            for name, text in texts.items()],
              "condition": [{"kind": "applicability", "expression": {"expression": "%status.exists() or %id.empty()"}}]}
    reading = ActionReading(action)
    scope = Scope(request, reading.definitions)
    for name in texts:
        assert scope.value(name) == Scope(request, reading.definitions).evaluate(compiled(f"%{name}")), name
    expected = Scope(request, reading.definitions).evaluate(reading.conditions[0]) == [True]
    assert reading.holds(Scope(request, reading.definitions)) is expected
    assert reading.holds(scope) is expected


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


def _module_cases(engine: Engine) -> list[tuple[str, str, dict[str, Any]]]:
    """(case, service id, request) for every built-in module case and every service of its hook."""
    return [(scenario.id, service["id"], request) for scenario, service, request in module_requests(engine, TODAY)]


def _judged_then_evaluated(engine: Engine, service_id: str, request: dict[str, Any]) -> dict[str, Any]:
    """As the service answers a request whose prefetch is complete: the orders judged, then evaluated."""
    prepared = engine.prepare(service_id, request, today=TODAY)
    engine.kinds_that_may_apply(service_id, prepared)
    return engine.evaluate(service_id, request, today=TODAY, prepared=prepared)


def test_what_judging_the_orders_worked_out_gives_the_cards_working_it_out_anew_gives(engine: Engine) -> None:
    cases = _module_cases(engine)
    assert len(cases) > 100
    for case, service_id, request in cases:
        try:
            anew = engine.evaluate(service_id, request, today=TODAY)
        except RequestError as refused:
            with pytest.raises(RequestError, match=re.escape(refused.message)):
                _judged_then_evaluated(engine, service_id, request)
            continue
        assert _judged_then_evaluated(engine, service_id, request) == anew, case


def test_a_kinds_variables_worked_out_to_judge_an_order_are_not_worked_out_again(engine: Engine, monkeypatch) -> None:
    kinds = [action for plan in engine.kb.plan_definitions for action in plan.get("action") or []]
    kind_variables = {id(e) for kind in kinds for e in engine.kb.actions.of(kind).definitions.values()}
    evaluated: list[tuple[str, int]] = []  # each kind variable evaluated, with the order it was on
    run = Expression.run

    def counting(self: Expression, resource: Any, lookup: Any) -> list[Any]:
        if id(self) in kind_variables:
            evaluated.append((self.text, id(resource)))
        return run(self, resource, lookup)

    monkeypatch.setattr(Expression, "run", counting)
    judged_cases = 0
    for case, service_id, request in _module_cases(engine):
        evaluated.clear()
        try:
            prepared = engine.prepare(service_id, request, today=TODAY)
        except RequestError:
            continue
        engine.kinds_that_may_apply(service_id, prepared)
        judging = list(evaluated)
        engine.evaluate(service_id, request, today=TODAY, prepared=prepared)
        # A kind variable evaluated again is one that failed when judged (and must say so again).
        assert not set(evaluated[len(judging):]) & set(judging) or prepared.applier.not_evaluated.checks, case
        judged_cases += bool(judging)
    assert judged_cases > 50


# Kinds made for the test, kept for the whole run: the engine knows an action by its identity.
_KIND_READING_FIRED = {"id": "kind-reads-fired", "extension": [
    {"url": EXT_VARIABLE, "valueExpression": {"language": "text/fhirpath", "name": "fired",
                                              "expression": "%firedTopics.count()"}}],
    "condition": [{"kind": "applicability", "expression": {"language": "text/fhirpath", "expression": "%fired = 0"}}]}
_KIND = {"id": "kind", "extension": [
    {"url": EXT_VARIABLE, "valueExpression": {"language": "text/fhirpath", "name": "ordered",
                                              "expression": "%order.id"}}],
    "condition": [{"kind": "applicability", "expression": {"language": "text/fhirpath", "expression": "%ordered = 'o1'"}}]}


def test_a_kind_whose_variables_read_the_fired_topics_is_worked_out_again(engine: Engine) -> None:
    applier, _ = _applier(engine)
    order = {"resourceType": "MedicationRequest", "id": "o1"}
    assert applier.kind_applies(_KIND, order) and applier.kind_applies(_KIND_READING_FIRED, order)
    assert applier._judged_values(_KIND, engine.kb.actions.of(_KIND), order)["ordered"] == ["o1"]
    assert applier._judged_values(_KIND_READING_FIRED, engine.kb.actions.of(_KIND_READING_FIRED), order) is None
    assert applier._judged_values(_KIND, engine.kb.actions.of(_KIND), {"id": "o1"}) is None  # another order
