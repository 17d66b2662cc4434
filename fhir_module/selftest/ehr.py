"""What an EHR does with a case: read the discovery document, fill each prefetch template from the
patient's chart (answering the queries as a FHIR server would), and post the hook request.

It knows CDS Hooks and FHIR, not the drug.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import date
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from fhir_module.engine.clinical._json import json_copy

from .cases import Scenario, ScenarioError, shift_date

USER_ID = "Practitioner/example"
DEFAULT_BASE = "https://ehr.example.org/fhir"
_TOKEN = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]+")
_TODAY_TOKEN = re.compile(r"^today(?:\(\))?(?:\s*([+-])\s*(\d+)\s*(d|days?|w|weeks?|m|months?|y|years?))?$")


# -- requests ---------------------------------------------------------------------------------------


def service_for_hook(discovery: dict[str, Any], hook: str, module: str | None = None) -> dict[str, Any]:
    """The one service of a ``GET /cds-services`` answer that handles ``hook`` (of ``module``: each
    module has its own services, ``<module>-<hook>``, when several are served)."""
    services = [s for s in discovery.get("services", []) if isinstance(s, dict) and s.get("hook") == hook
                and (module is None or str(s.get("id", "")).startswith(f"{module}-"))]
    if len(services) != 1:
        of = f" of module {module!r}" if module else ""
        raise ScenarioError(f"expected exactly one service{of} for hook {hook!r}, found {len(services)}")
    return services[0]


def build_context(scenario: Scenario) -> dict[str, Any]:
    context: dict[str, Any] = {
        "userId": USER_ID,
        "patientId": scenario.patient_id,
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": json_copy(order)} for order in scenario.draft_orders],
        },
    }
    if scenario.hook == "order-select":
        context["selections"] = list(scenario.selections)
    return context


def render_template(template: str, context: dict[str, Any], today: date) -> str:
    """Replaces the CDS Hooks prefetch tokens (``{{context.patientId}}``, ``{{userPractitionerId}}``, ...)."""
    user_type, _, user_ref_id = str(context.get("userId", "")).partition("/")

    def replace(token: str) -> str:
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

    parts = _template_parts(template)
    if len(parts) == 1:
        return template
    # Text, token, text, ...: each token replaced in order, as `_TOKEN.sub` would.
    return "".join(replace(part) if position % 2 else part for position, part in enumerate(parts))


@lru_cache(maxsize=256)
def _template_parts(template: str) -> tuple[str, ...]:
    """The template split at its tokens: text, then each token (stripped) and the text after it.
    The same few templates for every case: each split once."""
    return tuple(_TOKEN.split(template))


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


def _matches(resource: dict[str, Any], params: Iterable[tuple[str, str]], resource_type: str) -> bool:
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
    if not parts or not _RESOURCE_TYPE.fullmatch(parts[0]):
        raise ScenarioError(f"prefetch query {query!r} does not start with a resource type")
    resource_type = parts[0]
    if len(parts) == 2 and not query_string:
        for resource in record:
            if resource.get("resourceType") == resource_type and resource.get("id") == parts[1]:
                return json_copy(resource)
        return None
    if len(parts) != 1:
        raise ScenarioError(f"prefetch query {query!r} is neither a read (Type/id) nor a type search (Type?...)")
    params = _search_parameters(query_string)
    found = [
        json_copy(r)
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
                entries.append({"fullUrl": f"{base_url}/Medication/{r['id']}", "resource": json_copy(r),
                                "search": {"mode": "include"}})
    return {"resourceType": "Bundle", "type": "searchset", "total": len(found), "entry": entries}


@lru_cache(maxsize=1024)
def _search_parameters(query_string: str) -> tuple[tuple[str, str], ...]:
    # The same few queries for every case of a module: read once.
    if "%" not in query_string and "+" not in query_string:
        # Nothing to decode (every query the built-in cases make: each names its patient, so few
        # repeat): parse_qsl's own split, without its decoding of each name and value.
        fields = [field.partition("=") for field in query_string.split("&") if field]
        return tuple((name, value) for name, _, value in fields)
    return tuple(parse_qsl(query_string, keep_blank_values=True))


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
