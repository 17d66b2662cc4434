"""Bad input gives issues, never a crash: random mutations of the corpus's valid resources."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_module.validation import validate

CORPUS = Path(__file__).parent / "corpus" / "valid"
RESOURCES = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(CORPUS.glob("*.json"))]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, prefix + (i,))
    return out


def _mutate(resource: dict, path: tuple, action: str, value: Any, key: str) -> dict:
    resource = copy.deepcopy(resource)
    if not path:
        return resource
    parent: Any = resource
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "delete" and isinstance(parent, dict):
        del parent[last]
    elif action == "replace":
        parent[last] = value
    elif action == "add" and isinstance(parent[last], dict):
        parent[last][key] = value
    return resource


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_resources_never_crash_the_validator(data: st.DataObject) -> None:
    resource = data.draw(st.sampled_from(RESOURCES))
    path = data.draw(st.sampled_from(_paths(resource)))
    action = data.draw(st.sampled_from(["delete", "replace", "add"]))
    mutated = _mutate(resource, path, action, data.draw(json_values), data.draw(st.text(max_size=8)))
    outcome = validate(json.dumps(mutated))
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"]
    assert not [i for i in outcome["issue"] if i["code"] == "exception"], outcome


def test_deeply_nested_json_is_an_issue_not_a_crash() -> None:
    deep = '{"resourceType": "Basic", "extension": [' + '{"extension": [' * 5000 + "]}" * 5000 + "]}"
    outcome = validate(deep)
    assert outcome["issue"][0]["severity"] in ("fatal", "error")


def test_nesting_just_under_the_limit_is_validated() -> None:
    nested: dict = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(25):  # Basic > extension[] > ... : two JSON levels per extension
        nested = {"url": "http://example.org/part", "extension": [nested]}
    outcome = validate({"resourceType": "Basic", "code": {"text": "deep"}, "extension": [nested]})
    assert not [i for i in outcome["issue"] if i["severity"] in ("fatal", "error")], outcome


def test_r4_version_4_0_1_is_accepted_where_the_schema_stops_at_4_0_0() -> None:
    """The official R4 JSON schema predates the 4.0.1 correction; R4 content says 4.0.1."""
    statement = {"resourceType": "CapabilityStatement", "status": "active", "date": "2026-01-01",
                 "kind": "instance", "fhirVersion": "4.0.1", "format": ["json"],
                 "implementation": {"description": "x"}, "rest": [{"mode": "server"}]}
    errors = lambda o: [i for i in o["issue"] if i["severity"] in ("error", "fatal")]  # noqa: E731
    assert errors(validate(json.dumps(statement).encode())) == []
    statement["fhirVersion"] = "4.0.9"
    assert errors(validate(json.dumps(statement).encode()))
