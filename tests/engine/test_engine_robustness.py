"""The engine never trusts input: any request gives cards or a RequestError (a 4xx), never a crash."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_module.engine import Engine, RequestError
from fhir_module.knowledge import builtin_module_dir
from tests.support.scenarios import build_request, load_scenarios, module_services

TODAY = date.today()
SCENARIOS = load_scenarios(builtin_module_dir("levomilnacipran") / "cases" / "public", TODAY)
ENGINE = Engine.default()
SERVICES = module_services(ENGINE.services(), "levomilnacipran")
INDICATORS = {"info", "warning", "critical"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def _requests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for scenario in SCENARIOS:
        service = SERVICES[scenario.hook]
        found.append((service["id"], build_request(scenario, service, fhir_server=None, prefetch=True, today=TODAY)))
    return found


REQUESTS = _requests()


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            paths += _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths += _paths(child, prefix + (index,))
    return paths


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    value = copy.copy(value)
    value[path[0]] = _replace(value[path[0]], path[1:], new)
    return value


def check_response(response: dict[str, Any]) -> None:
    assert set(response) >= {"cards"}
    json.dumps(response)  # serialisable
    for card in response["cards"]:
        assert card["indicator"] in INDICATORS
        assert 0 < len(card["summary"]) < 140
        assert card["source"]["label"] and card["source"]["topic"]["code"]
        for suggestion in card.get("suggestions", []):
            assert suggestion["label"] and suggestion["uuid"] and suggestion["actions"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), replacement=json_values)
def test_any_value_anywhere_in_a_request_is_handled(data: st.DataObject, replacement: Any) -> None:
    service_id, request = data.draw(st.sampled_from(REQUESTS))
    path = data.draw(st.sampled_from(_paths(request)))
    mutated = _replace(request, path, replacement)
    try:
        response = ENGINE.evaluate(service_id, mutated, today=TODAY)
    except RequestError as error:
        # 400: the request broke a stated rule. Not 422: that is the engine's last-resort guard,
        # which fuzzing must never reach.
        assert error.status == 400 and error.message
        return
    check_response(response)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_removing_any_element_is_handled(data: st.DataObject) -> None:
    service_id, request = data.draw(st.sampled_from(REQUESTS))
    path = data.draw(st.sampled_from([p for p in _paths(request) if p]))
    mutated = copy.deepcopy(request)
    holder = mutated
    for step in path[:-1]:
        holder = holder[step]
    del holder[path[-1]]
    try:
        check_response(ENGINE.evaluate(service_id, mutated, today=TODAY))
    except RequestError as error:
        assert error.status == 400


@pytest.mark.parametrize("body", [None, [], "x", 3, {}, {"hook": "order-select"},
                                  {"hook": "order-select", "context": []},
                                  {"hook": "order-select", "context": {"patientId": 3}}])
def test_malformed_requests_are_request_errors(body: Any) -> None:
    with pytest.raises(RequestError) as raised:
        ENGINE.evaluate("levomilnacipran-order-select", body, today=TODAY)
    assert raised.value.status == 400


def test_wrong_hook_for_the_service() -> None:
    service_id, request = next((s, r) for s, r in REQUESTS if r["hook"] == "order-select")
    with pytest.raises(RequestError, match="answers hook"):
        ENGINE.evaluate("levomilnacipran-order-sign", request, today=TODAY)


def test_a_selection_not_among_the_drafts() -> None:
    service_id, request = next((s, r) for s, r in REQUESTS if r["hook"] == "order-select")
    request = copy.deepcopy(request)
    request["context"]["selections"] = ["MedicationRequest/nowhere"]
    with pytest.raises(RequestError, match="not among context.draftOrders"):
        ENGINE.evaluate(service_id, request, today=TODAY)
