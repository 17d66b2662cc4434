"""What depends only on the knowledge's shape is worked out once, and gives what working it out on
every request gave: which variables a rule's expressions read (Scope.reads), what a card takes
from its action's JSON (CardParts), an action's sub-actions and those with notes."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fhir_module.engine import Engine
from fhir_module.engine.actions import SEVERITY, action_type, basis, ext, parts, policies, topic_coding
from fhir_module.engine.errors import RequestError
from fhir_module.engine.expressions import compiled, template
from fhir_module.engine.scope import Scope
from tests.support.scenarios import module_requests

TODAY = date(2026, 11, 26)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.default()


def reads_walked(scope: Scope, expressions: list[Any]) -> frozenset[tuple[int, str]]:
    """Scope.reads as it was worked out on every request: each name looked up from the scope that
    reads it, and the definitions it reaches followed from the scope that defines them."""
    found: set[tuple[int, str]] = set()
    pending = [(scope, name) for e in expressions for name in (compiled(e) if isinstance(e, str) else e).variables]
    while pending:
        owner: Scope | None
        owner, name = pending.pop()
        while owner is not None and name not in owner.values and name not in owner.definitions:
            owner = owner.parent
        if owner is None or (id(owner), name) in found:
            continue
        found.add((id(owner), name))
        definition = owner.definitions.get(name)
        if definition is not None:
            pending += [(owner, used) for used in definition.variables]
    return frozenset(found)


def test_reads_is_what_walking_the_scopes_gives() -> None:
    request = Scope(values={"patient": [{}], "today": ["2026-11-26"]})
    order = request.child(values={"order": [{}], "firedTopics": []})
    kind = order.child({"dose": "%order.id", "age": "%patient.birthDate", "limit": "100", "both": "%dose | %age"})
    rule = kind.child({"limit": "120", "over": "%dose > %limit", "self": "%self", "a": "%b", "b": "%a"})
    merged = rule.child(values={"lowest": [{"limit": 1}], "causes": []})
    given = kind.child({"order": "%today", "x": "%order"}, values={"dose": [1]})  # shadows, given values
    cases = [
        (rule, ["%over", "%limit", "%both"]), (rule, ["%self", "%a"]), (rule, ["%unknown", "%firedTopics"]),
        (merged, ["%lowest.limit", "%over", "%causes"]), (given, ["%x", "%dose", "%age"]), (kind, ["%limit"]),
        (request, ["%order"]), (rule, []), (rule, [compiled("%dose"), "%today"]),
    ]
    for scope, expressions in cases:
        assert scope.reads(expressions) == reads_walked(scope, expressions), expressions
        assert scope.reads(expressions) == reads_walked(scope, expressions)  # worked out once, the same again


def test_every_reads_of_the_module_cases_is_what_walking_the_scopes_gives(engine: Engine, monkeypatch) -> None:
    """Every reads the engine works out for the built-in modules' cases (rules, merged causes, data
    notes) is compared, on the scopes of the request, with the walk."""
    reads = Scope.reads
    compared: list[frozenset[tuple[int, str]]] = []

    def checked(self: Scope, expressions: list[Any]) -> frozenset[tuple[int, str]]:
        found = reads(self, expressions)
        assert found == reads_walked(self, expressions)
        compared.append(found)
        return found

    monkeypatch.setattr(Scope, "reads", checked)
    for _, service, request in module_requests(engine, TODAY):
        try:
            engine.evaluate(service["id"], request, today=TODAY)
        except RequestError:
            continue
    assert len(compared) > 300 and any(len(found) > 3 for found in compared)


def _actions(engine: Engine) -> list[dict[str, Any]]:
    found, stack = [], [action for plan in engine.kb.plan_definitions for action in plan.get("action") or []]
    while stack:
        action = stack.pop()
        found.append(action)
        stack.extend(action.get("action") or [])
    return found


def _has_notes(action: dict[str, Any]) -> bool:
    return bool(ext(action, "/card-note")) or any(_has_notes(child) for child in action.get("action") or []
                                                  if not action_type(child))


def test_what_a_card_takes_from_its_action_is_what_its_json_says(engine: Engine) -> None:
    actions = _actions(engine)
    assert len(actions) > 50
    for action in actions:
        card = engine.kb.actions.card(action)
        assert card is engine.kb.actions.card(action)
        assert card.topic_coding == topic_coding(action)
        assert card.indicator == SEVERITY.get(action.get("priority", "routine"), "info")
        assert list(card.documentation) == list(action.get("documentation") or [])
        assert list(card.quotes) == [basis(doc) for doc in action.get("documentation") or [] if doc.get("citation")]
        used = policies(action)
        assert card.definitions_used == (" Definitions used: " + "; ".join(used) + "." if used else "")
        texts = next((parts(t) for t in ext(action, "/card-template")), {})
        for names, keys in ((card.card_variables, ("summary", "detail")), (card.cause_variables, ("detail", "reason"))):
            named = [name for key in keys if texts.get(key) for name in template(texts[key]).variables]
            assert list(names) == list(dict.fromkeys(named))
        children = engine.kb.actions.children(action)
        assert [child for child, _ in children] == list(action.get("action") or [])
        assert all(reading is engine.kb.actions.of(child) for child, reading in children)
        assert [child for child, _ in engine.kb.actions.noted_children(action)] == [
            child for child in action.get("action") or [] if not action_type(child) and _has_notes(child)]
    assert any(engine.kb.actions.card(action).definitions_used for action in actions)
    assert any(engine.kb.actions.noted_children(action) for action in actions)


def test_the_root_of_an_expression_is_the_order_given_defined_or_inherited() -> None:
    """A scope given %order evaluates on it from the start; its children on it too, unless they
    define their own %order (worked out on first use, as it was)."""
    given = Scope(values={"order": [{"id": "given"}]})
    assert given.evaluate("id") == ["given"] and given.child({"x": "1"}).evaluate("id") == ["given"]
    defining = given.child({"order": "%other", "other": "{}"}, values={"other": [{"id": "defined"}]})
    assert defining.evaluate("id") == ["defined"] and defining.child().evaluate("id") == ["defined"]
    assert Scope().evaluate("id") == [] and Scope(values={"order": []}).evaluate("id") == []


def _containers(value: Any) -> list[int]:
    if isinstance(value, dict):
        return [id(value), *(i for item in value.values() for i in _containers(item))]
    if isinstance(value, list):
        return [id(value), *(i for item in value for i in _containers(item))]
    return []


def test_a_fresh_copy_of_the_knowledge_is_its_json_copy_and_shares_nothing(engine: Engine) -> None:
    from fhir_module.engine.clinical._json import json_copy

    shared = {"value": 1.5}
    parts = [shared, [shared, shared, {"a": [shared]}], {"x": None, "y": True, "z": 2, "w": "t"}]
    parts += [definition[key] for definition in engine.kb.activity_definitions.values()
              for key in ("dosage", "productCodeableConcept") if key in definition]
    assert len(parts) > 5
    for part in parts:
        first, second = engine.kb.fresh_copy(part), engine.kb.fresh_copy(part)
        assert first == json_copy(part) == second == part
        ids = _containers(first)
        assert len(ids) == len(set(ids))  # nothing inside shared, as json_copy gives it
        assert not set(ids) & set(_containers(part)) and not set(ids) & set(_containers(second))
