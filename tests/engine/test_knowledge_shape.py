"""What depends only on the knowledge's shape is worked out once, and gives what working it out on
every request gave: which variables a rule's expressions read (Scope.reads)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fhir_module.engine import Engine
from fhir_module.engine.errors import RequestError
from fhir_module.engine.expressions import compiled
from fhir_module.engine.scope import Scope
from fhir_module.knowledge import builtin_module_dirs, case_files
from tests.support.scenarios import build_request, load_scenario

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
    for module in builtin_module_dirs():
        for path in case_files(module):
            scenario = load_scenario(path, TODAY)
            for service in engine.services():
                if service["hook"] == scenario.hook:
                    request = build_request(scenario, service, fhir_server=None, prefetch=True, today=TODAY)
                    try:
                        engine.evaluate(service["id"], request, today=TODAY)
                    except RequestError:
                        continue
    assert len(compared) > 300 and any(len(found) > 3 for found in compared)
