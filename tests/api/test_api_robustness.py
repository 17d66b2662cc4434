"""Any JSON value in any member of a real hook request gets a 2xx or a 4xx OperationOutcome over
HTTP, never a 5xx (Hypothesis replaces one member at a time of a scenario's request)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.helpers import scenario_request

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def member_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from member_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from member_paths(item, (*path, index))
    if path:
        yield path


def test_any_json_in_any_member_is_never_a_server_error(base_url: str, discovery: dict[str, Any]) -> None:
    service_id, request = scenario_request("pub-serotonergic-bleeding", discovery)
    paths = list(member_paths(request))
    url = f"{base_url}/cds-services/{service_id}"
    statuses: set[int] = set()

    with httpx.Client(timeout=30) as client:

        @settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(path=st.sampled_from(paths), value=JSON)
        def one(path: tuple[Any, ...], value: Any) -> None:
            body = copy.deepcopy(request)
            target = body
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
            response = client.post(url, json=body)
            statuses.add(response.status_code)
            assert response.status_code < 500, f"{path} = {value!r}: {response.text[:300]}"
            if response.status_code >= 400:
                assert response.json()["resourceType"] == "OperationOutcome"

        one()
    assert 200 in statuses and any(400 <= s < 500 for s in statuses)
