"""A module's test cases: the scenario shape (tests/scenarios/README.md), read and made concrete.

A case is a patient's chart as the EHR holds it, the draft orders, the selections and the cards
expected. Dates are placeholders resolved against the day the case runs (`${today-10d}`,
`${age:67}`), so that a case written once stays true.
"""

from __future__ import annotations

import calendar
import json
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

HOOKS = ("order-select", "order-sign")

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_TODAY_OFFSET = re.compile(r"^today(?:\s*([+-])\s*(\d+)\s*([dwmy]))?(?::(year|month))?$")
_AGE = re.compile(r"^age:(\d+)$")


class ScenarioError(ValueError):
    """A scenario file (or a prefetch template) that cannot be used, with the reason."""


# -- dates ------------------------------------------------------------------------------------------


def _add_months(day: date, months: int) -> date:
    """Calendar month arithmetic; the 31st of a shorter month becomes its last day (and 29 Feb → 28 Feb)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def shift_date(today: date, sign: str, amount: int, unit: str) -> date:
    """``today`` moved by ``amount`` days, weeks, months or years (unit's first letter)."""
    n = amount if sign == "+" else -amount
    unit = unit[0]
    if unit == "d":
        return today + timedelta(days=n)
    if unit == "w":
        return today + timedelta(weeks=n)
    if unit == "m":
        return _add_months(today, n)
    return _add_months(today, 12 * n)


def birth_date_for_age(age: int, today: date) -> date:
    """The birth date exactly ``age`` years before ``today``: the patient turns ``age`` today."""
    return _add_months(today, -12 * age)


def resolve_placeholder(expression: str, today: date) -> str:
    """``today``, ``today-10d``, ``today+2d`` (also w/m/y) and ``age:67`` → an ISO date;
    ``today-17y:year`` and ``today-17y:month`` → its year or year-month only (a partial date)."""
    expression = expression.strip()
    if match := _TODAY_OFFSET.match(expression):
        sign, amount, unit, precision = match.groups()
        day = (shift_date(today, sign, int(amount), unit) if sign else today).isoformat()
        return {"year": day[:4], "month": day[:7]}.get(precision or "", day)
    if match := _AGE.match(expression):
        return birth_date_for_age(int(match.group(1)), today).isoformat()
    raise ScenarioError(f"unknown placeholder ${{{expression}}} (known: ${{today}}, ${{today-10d}}, ${{age:67}})")


def resolve_dates(value: Any, today: date) -> Any:
    """A copy of ``value`` with every ``${...}`` placeholder, anywhere in any string, resolved."""
    if isinstance(value, str):
        if "${" not in value:  # most strings: nothing to resolve
            return value
        return _PLACEHOLDER.sub(lambda m: resolve_placeholder(m.group(1), today), value)
    if isinstance(value, list):
        return [resolve_dates(item, today) for item in value]
    if isinstance(value, dict):
        return {key: resolve_dates(item, today) for key, item in value.items()}
    return value


# -- loading ----------------------------------------------------------------------------------------


@dataclass
class Scenario:
    """One clinical situation with its chart, the orders being written and the cards expected."""

    id: str
    description: str
    hook: str
    patient_id: str
    record: list[dict[str, Any]]
    draft_orders: list[dict[str, Any]]
    selections: list[str]
    expect: dict[str, Any]
    source: Path | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        return f"Scenario({self.id!r}, hook={self.hook!r})"


def _require(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ScenarioError(f"{where}: missing {key!r}")
    value = data[key]
    if not isinstance(value, kind):
        raise ScenarioError(f"{where}: {key!r} must be {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def _check_resources(resources: list[Any], label: str, where: str) -> None:
    for index, resource in enumerate(resources):
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise ScenarioError(f"{where}: {label}[{index}] is not a FHIR resource (no resourceType)")
        if not isinstance(resource.get("id"), str) or not resource["id"]:
            raise ScenarioError(f"{where}: {label}[{index}] ({resource['resourceType']}) has no id")


def parse_scenario(data: Any, today: date, source: Path | None = None) -> Scenario:
    """Validates one scenario document and resolves its dates."""
    where = str(source) if source else "scenario"
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: a scenario is a JSON object")
    data = resolve_dates(data, today)
    scenario_id = _require(data, "id", str, where)
    hook = _require(data, "hook", str, where)
    if hook not in HOOKS:
        raise ScenarioError(f"{where}: hook {hook!r} is not one of {HOOKS}")
    record = _require(data, "record", list, where)
    drafts = _require(data, "draftOrders", list, where)
    _check_resources(record, "record", where)
    _check_resources(drafts, "draftOrders", where)
    selections = data.get("selections", [])
    if not isinstance(selections, list) or not all(isinstance(s, str) for s in selections):
        raise ScenarioError(f"{where}: 'selections' must be a list of references")
    expect = _require(data, "expect", dict, where)
    cards = _require(expect, "cards", list, f"{where} expect")
    for index, card in enumerate(cards):
        if not isinstance(card, dict) or not isinstance(card.get("topic"), str) or not isinstance(card.get("indicator"), str):
            raise ScenarioError(f"{where}: expect.cards[{index}] needs 'topic' and 'indicator'")
        suggestion = card.get("suggestion")
        if suggestion is not None and (not isinstance(suggestion, dict) or suggestion.get("action") not in ("update", "delete")):
            raise ScenarioError(f"{where}: expect.cards[{index}].suggestion.action must be 'update' or 'delete'")
    return Scenario(
        id=scenario_id,
        description=data.get("description", ""),
        hook=hook,
        patient_id=_require(data, "patientId", str, where),
        record=record,
        draft_orders=drafts,
        selections=list(selections),
        expect=expect,
        source=source,
    )


def load_scenario(path: Path | str, today: date | None = None) -> Scenario:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path}: not valid JSON: {exc}") from exc
    return parse_scenario(data, today or date.today(), path)


def load_scenarios(folder: Path | str, today: date | None = None) -> list[Scenario]:
    """Every ``*.json`` scenario in ``folder`` (sorted by id), with dates resolved against ``today``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScenarioError(f"scenario folder {folder} does not exist")
    scenarios = [load_scenario(path, today) for path in sorted(folder.glob("*.json"))]
    seen: set[str] = set()
    for scenario in scenarios:
        if scenario.id in seen:
            raise ScenarioError(f"{scenario.source}: duplicate scenario id {scenario.id!r}")
        seen.add(scenario.id)
    return sorted(scenarios, key=lambda s: s.id)
