"""set_path reads each path's steps once (paths._steps): what it writes is what reading the path
anew each time writes, for every dynamicValue path of the knowledge."""

from __future__ import annotations

import copy
from typing import Any

from fhir_module.engine import Engine
from fhir_module.engine.paths import _STEP, _steps, set_path


def _set_path_read_anew(resource: dict[str, Any], path: str, value: Any) -> None:
    """set_path as it was written, the path read by the pattern on every call."""
    steps = _STEP.findall(path)
    node: Any = resource
    for position, (name, index) in enumerate(steps):
        last = position == len(steps) - 1
        if index:
            items = node.setdefault(name, [])
            while len(items) <= int(index):
                items.append({})
            if last:
                items[int(index)] = value
            node = items[int(index)]
        elif last:
            node[name] = value
        else:
            node = node.setdefault(name, {})


def test_set_path_writes_what_reading_the_path_anew_writes() -> None:
    engine = Engine.default()
    paths = {value.get("path") for plan in engine.kb.plan_definitions for action in _actions(plan)
             for value in action.get("dynamicValue") or [] if isinstance(value.get("path"), str)}
    paths |= {"dosageInstruction[2].doseAndRate[0].doseQuantity.value", "a.b[1].c", "x"}
    assert len(paths) > 4
    starts = [{}, {"dosageInstruction": [{"text": "kept"}]}, {"a": {"b": [{"c": 1}, {"d": 2}]}}]
    for path in sorted(paths):
        assert _steps(path) == tuple(_STEP.findall(path))
        for start in starts:
            for _ in range(2):  # the second time from the steps kept
                mine, anew = copy.deepcopy(start), copy.deepcopy(start)
                set_path(mine, path, 40)
                _set_path_read_anew(anew, path, 40)
                assert mine == anew, path


def _actions(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found, stack = [], list(plan.get("action") or [])
    while stack:
        action = stack.pop()
        found.append(action)
        stack.extend(action.get("action") or [])
    return found
