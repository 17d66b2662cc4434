"""The clinical scenario harness: load scenario files, build CDS Hooks requests, compare cards.

A scenario (a module's test case) is run the way an EHR runs it (tests/scenarios/README.md): read the discovery document, fill
each prefetch template from the chart (or send none and give ``fhirServer``), post, compare cards.
This module does the EHR's part; it knows CDS Hooks and FHIR, not the drug.
"""

from __future__ import annotations

import calendar
import copy
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

HOOKS = ("order-select", "order-sign")
USER_ID = "Practitioner/example"
DEFAULT_BASE = "https://ehr.example.org/fhir"

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_TODAY_OFFSET = re.compile(r"^today(?:\s*([+-])\s*(\d+)\s*([dwmy]))?(?::(year|month))?$")
_AGE = re.compile(r"^age:(\d+)$")
_TOKEN = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")
_TODAY_TOKEN = re.compile(r"^today(?:\(\))?(?:\s*([+-])\s*(\d+)\s*(d|days?|w|weeks?|m|months?|y|years?))?$")


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


# -- requests ---------------------------------------------------------------------------------------


def service_for_hook(discovery: dict[str, Any], hook: str) -> dict[str, Any]:
    """The one service of a ``GET /cds-services`` answer that handles ``hook``."""
    services = [s for s in discovery.get("services", []) if isinstance(s, dict) and s.get("hook") == hook]
    if len(services) != 1:
        raise ScenarioError(f"expected exactly one service for hook {hook!r}, found {len(services)}")
    return services[0]


def build_context(scenario: Scenario) -> dict[str, Any]:
    context: dict[str, Any] = {
        "userId": USER_ID,
        "patientId": scenario.patient_id,
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": copy.deepcopy(order)} for order in scenario.draft_orders],
        },
    }
    if scenario.hook == "order-select":
        context["selections"] = list(scenario.selections)
    return context


def render_template(template: str, context: dict[str, Any], today: date) -> str:
    """Replaces the CDS Hooks prefetch tokens (``{{context.patientId}}``, ``{{userPractitionerId}}``, ...)."""
    user_type, _, user_ref_id = str(context.get("userId", "")).partition("/")

    def replace(match: re.Match[str]) -> str:
        token = match.group(1)
        if token.startswith("context."):
            value = context.get(token[len("context.") :])
            if not isinstance(value, str):
                raise ScenarioError(f"prefetch token {{{{{token}}}}} has no string value in the context")
            return value
        if token.startswith("user") and token.endswith("Id") and token != "userId":
            # userPractitionerId, userPractitionerRoleId, userPatientId, userRelatedPersonId
            if token[len("user") : -len("Id")] == user_type:
                return user_ref_id
            raise ScenarioError(f"prefetch token {{{{{token}}}}} does not match userId {context.get('userId')!r}")
        if today_match := _TODAY_TOKEN.match(token):
            sign, amount, unit = today_match.groups()
            return (shift_date(today, sign, int(amount), unit) if sign else today).isoformat()
        raise ScenarioError(f"unknown prefetch token {{{{{token}}}}}")

    return _TOKEN.sub(replace, template)


def _patient_reference(resource: dict[str, Any]) -> str | None:
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            return ref["reference"]
    return None


def _codings(value: Any) -> list[dict[str, Any]]:
    """Every Coding under a CodeableConcept, a list of them, or a plain code string."""
    if isinstance(value, list):
        return [c for item in value for c in _codings(item)]
    if isinstance(value, dict):
        return [c for c in value.get("coding", []) if isinstance(c, dict)]
    if isinstance(value, str):
        return [{"code": value}]
    return []


# Search parameter → the elements it searches (token parameters only; other parameters over-include).
_TOKEN_PARAMS: dict[str, tuple[str, ...]] = {
    "status": ("status",),
    "clinical-status": ("clinicalStatus",),
    "verification-status": ("verificationStatus",),
    "code": ("code", "medicationCodeableConcept"),
    "category": ("category",),
    "intent": ("intent",),
}


def _token_codings(resource: dict[str, Any], param: str) -> list[dict[str, Any]]:
    codings = [c for element in _TOKEN_PARAMS[param] for c in _codings(resource.get(element))]
    if param == "code" and resource.get("resourceType") == "AllergyIntolerance":
        # AllergyIntolerance?code= also searches the reactions' substances.
        codings += [c for reaction in resource.get("reaction") or [] for c in _codings(reaction.get("substance"))]
    return codings


def _token_matches(resource: dict[str, Any], param: str, value: str) -> bool:
    """A FHIR token search on the resource (``system|code``, ``code`` or ``system|``), OR over commas."""
    codings = _token_codings(resource, param)
    for alternative in value.split(","):
        system, bar, code = alternative.rpartition("|")
        for coding in codings:
            if bar and system and coding.get("system") != system:
                continue
            if code == "" or coding.get("code") == code:
                return True
    return False


def _matches(resource: dict[str, Any], params: list[tuple[str, str]], resource_type: str) -> bool:
    for key, value in params:
        name, _, modifier = key.partition(":")
        if name in ("patient", "subject") and resource_type != "Patient":
            wanted = {v if "/" in v else f"Patient/{v}" for v in value.split(",")}
            if _patient_reference(resource) not in wanted:
                return False
        elif name == "_id":
            if resource.get("id") not in value.split(","):
                return False
        elif name in _TOKEN_PARAMS and not modifier:
            if not _token_matches(resource, name, value):
                return False
        # Dates, _count, _sort and the rest: ignored, i.e. over-included (the service filters).
    return True


def answer_query(query: str, record: Iterable[dict[str, Any]], base_url: str = DEFAULT_BASE) -> dict[str, Any] | None:
    """Answers a rendered prefetch query from the chart the way a FHIR server would.

    ``Patient/123`` → that resource (None when absent); ``Type?params`` → a searchset Bundle.
    """
    query = query.strip().lstrip("/")
    path, _, query_string = query.partition("?")
    parts = [p for p in path.split("/") if p]
    if not parts or not re.fullmatch(r"[A-Z][A-Za-z]+", parts[0]):
        raise ScenarioError(f"prefetch query {query!r} does not start with a resource type")
    resource_type = parts[0]
    if len(parts) == 2 and not query_string:
        for resource in record:
            if resource.get("resourceType") == resource_type and resource.get("id") == parts[1]:
                return copy.deepcopy(resource)
        return None
    if len(parts) != 1:
        raise ScenarioError(f"prefetch query {query!r} is neither a read (Type/id) nor a type search (Type?...)")
    params = parse_qsl(query_string, keep_blank_values=True)
    found = [
        copy.deepcopy(r)
        for r in record
        if r.get("resourceType") == resource_type and _matches(r, params, resource_type)
    ]
    entries = [
        {"fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
        for r in found
    ]
    # _include=Type:medication: the Medication resources the matches reference, as a server adds them.
    if any(key == "_include" and value.endswith(":medication") for key, value in params):
        wanted = {r.get("medicationReference", {}).get("reference") for r in found if isinstance(r.get("medicationReference"), dict)}
        for r in record:
            if r.get("resourceType") == "Medication" and f"Medication/{r.get('id')}" in wanted:
                entries.append({"fullUrl": f"{base_url}/Medication/{r['id']}", "resource": copy.deepcopy(r),
                                "search": {"mode": "include"}})
    return {"resourceType": "Bundle", "type": "searchset", "total": len(found), "entry": entries}


def build_prefetch(
    scenario: Scenario, templates: dict[str, str], context: dict[str, Any], today: date, base_url: str
) -> dict[str, Any]:
    prefetch: dict[str, Any] = {}
    for key, template in templates.items():
        if not isinstance(template, str):
            raise ScenarioError(f"prefetch template {key!r} is not a string")
        prefetch[key] = answer_query(render_template(template, context, today), scenario.record, base_url)
    return prefetch


def build_request(
    scenario: Scenario,
    discovery_service: dict[str, Any],
    *,
    fhir_server: str | None,
    prefetch: bool,
    today: date | None = None,
) -> dict[str, Any]:
    """A CDS Hooks 2.0 request for ``scenario`` to the service described by ``discovery_service``.

    ``prefetch=True`` fills every prefetch template of the service from the scenario's chart;
    ``fhir_server`` (a FHIR base URL) is sent as ``fhirServer`` so the service can fetch instead.
    """
    today = today or date.today()
    context = build_context(scenario)
    request: dict[str, Any] = {
        "hookInstance": str(uuid.uuid4()),
        "hook": scenario.hook,
    }
    if fhir_server is not None:
        request["fhirServer"] = fhir_server
    request["context"] = context
    if prefetch:
        templates = discovery_service.get("prefetch") or {}
        if not isinstance(templates, dict):
            raise ScenarioError("the discovery service's 'prefetch' is not an object")
        request["prefetch"] = build_prefetch(scenario, templates, context, today, fhir_server or DEFAULT_BASE)
    return request


# -- comparing cards --------------------------------------------------------------------------------


_PERIOD_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.0, "a": 365.0}


def daily_dose_mg(resource: dict[str, Any]) -> float | None:
    """``doseAndRate[0].doseQuantity`` in mg × doses per day, from the first dosage instruction.

    None when the dose is missing or not in mg (the caller reports it).
    """
    dosages = resource.get("dosageInstruction") or []
    if not dosages or not isinstance(dosages[0], dict):
        return None
    dosage = dosages[0]
    dose_and_rate = dosage.get("doseAndRate") or []
    quantity = dose_and_rate[0].get("doseQuantity") if dose_and_rate and isinstance(dose_and_rate[0], dict) else None
    if not isinstance(quantity, dict) or not isinstance(quantity.get("value"), (int, float)):
        return None
    unit = quantity.get("code") or quantity.get("unit")
    if unit != "mg":
        return None
    repeat = (dosage.get("timing") or {}).get("repeat") or {}
    frequency = repeat.get("frequency", 1)
    period = repeat.get("period", 1)
    period_days = _PERIOD_DAYS.get(repeat.get("periodUnit", "d"))
    if not isinstance(frequency, (int, float)) or not isinstance(period, (int, float)) or not period or period_days is None:
        return None
    return float(quantity["value"]) * frequency / (period * period_days)


def card_topic(card: dict[str, Any]) -> str | None:
    topic = (card.get("source") or {}).get("topic") or {}
    return topic.get("code") if isinstance(topic, dict) else None


def _resource_ids(action: dict[str, Any]) -> list[str]:
    resource_id = action.get("resourceId")
    if isinstance(resource_id, str):
        return [resource_id]
    if isinstance(resource_id, list):
        return [r for r in resource_id if isinstance(r, str)]
    return []


def _suggestion_problem(expected: dict[str, Any], card: dict[str, Any]) -> str | None:
    """None when one of the card's suggestions does what ``expected`` says; else why not."""
    action_type = expected["action"]
    target = expected.get("resourceId", "")
    seen: list[str] = []
    for suggestion in card.get("suggestions") or []:
        for action in (suggestion or {}).get("actions") or []:
            if not isinstance(action, dict):
                continue
            if action.get("type") != action_type:
                seen.append(f"{action.get('type')}")
                continue
            if action_type == "delete":
                if target in _resource_ids(action):
                    return None
                seen.append(f"delete {_resource_ids(action)}")
                continue
            resource = action.get("resource") or {}
            ref = f"{resource.get('resourceType')}/{resource.get('id')}"
            dose = daily_dose_mg(resource)
            if ref == target and dose is not None and abs(dose - float(expected["dailyDoseMg"])) < 1e-6:
                return None
            seen.append(f"update {ref} to {dose} mg/day")
    want = f"{action_type} {target}" + (f" to {expected['dailyDoseMg']} mg/day" if action_type == "update" else "")
    return f"suggestion '{want}' not found (actions seen: {seen or 'none'})"


def _text_problem(expected: dict[str, Any], card: dict[str, Any]) -> str | None:
    """None when the card's summary and detail say (and do not say) what ``expected`` asks:
    ``summaryIncludes``, ``detailIncludes``, ``detailExcludes`` (lists of texts, case-sensitive)."""
    for key, element, wanted in (("summaryIncludes", "summary", True), ("detailIncludes", "detail", True),
                                 ("detailExcludes", "detail", False)):
        text = card.get(element) if isinstance(card.get(element), str) else ""
        for fragment in expected.get(key) or []:
            if (fragment in text) != wanted:
                return f"{element} {'lacks' if wanted else 'says'} {fragment!r}: {text!r}"
    return None


def compare_cards(expect: dict[str, Any], response: dict[str, Any]) -> list[str]:
    """The ways ``response`` differs from a scenario's ``expect``; an empty list means it matches.

    Expected cards are matched by topic code and indicator (and, when given, their suggestion and
    what their summary and detail say); each actual card answers at most one expected card. With
    ``noOtherCards``, every unmatched card is a false alarm.
    """
    cards = response.get("cards") if isinstance(response, dict) else None
    if not isinstance(cards, list):
        return [f"response has no 'cards' list: {str(response)[:300]}"]
    problems: list[str] = []
    used: set[int] = set()
    for expected in expect.get("cards", []):
        label = f"{expected['topic']}/{expected['indicator']}"
        candidates = [
            i for i, card in enumerate(cards)
            if i not in used and isinstance(card, dict)
            and card_topic(card) == expected["topic"] and card.get("indicator") == expected["indicator"]
        ]
        if not candidates:
            got = [f"{card_topic(c)}/{c.get('indicator')}" for c in cards if isinstance(c, dict)]
            problems.append(f"missing card {label} (cards: {got or 'none'})")
            continue
        suggestion = expected.get("suggestion")
        reasons = {i: _text_problem(expected, cards[i]) or (_suggestion_problem(suggestion, cards[i]) if suggestion else None)
                   for i in candidates}
        good = [i for i, reason in reasons.items() if reason is None]
        if good:
            used.add(good[0])
        else:
            used.add(candidates[0])
            problems.append(f"card {label}: {reasons[candidates[0]]}")
    if expect.get("noOtherCards"):
        for i, card in enumerate(cards):
            if i not in used:
                summary = card.get("summary") if isinstance(card, dict) else card
                topic = card_topic(card) if isinstance(card, dict) else None
                indicator = card.get("indicator") if isinstance(card, dict) else None
                problems.append(f"unexpected card {topic}/{indicator}: {summary!r}")
    return problems


def validation_errors(scenario: Scenario) -> list[str]:
    """The R4 errors of a scenario's chart and drafts: a fixture is only evidence if an EHR could send it."""
    from fhir_module.validation.validator import validate

    return [
        f"{resource['resourceType']}/{resource['id']}: {issue.get('diagnostics')} at {issue.get('expression')}"
        for resource in [*scenario.record, *scenario.draft_orders]
        for issue in validate(resource, fhir_version="R4")["issue"]
        if issue.get("severity") in ("error", "fatal")
    ]
