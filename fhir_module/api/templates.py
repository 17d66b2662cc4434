"""Prefetch templates: replace `{{token}}`s with values from the hook context.

Supported tokens (CDS Hooks 2.0, "Prefetch tokens"):

- `{{context.field}}` and paths into it (`{{context.draftOrders.entry.resource.id}}`), with
  `ofType(ResourceType)` steps; a collection becomes a comma-separated list (search "or");
- `{{userPractitionerId}}`, `{{userPractitionerRoleId}}`, `{{userPatientId}}`,
  `{{userRelatedPersonId}}`, taken from `context.userId` (`Type/id`) when its type matches;
- `{{today()}}`, `{{today() - 90 days}}`, `{{today() + 1 day}}`.

Every value is URL-encoded, so a context value cannot inject search parameters or path segments,
and a value placed in the path, or of an id token (`context.patientId`, `{{userPractitionerId}}`),
must be a FHIR id. A token that has no value makes the template unrenderable (`TemplateError`),
never an empty query.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any, Mapping
from urllib.parse import quote

from .fetch import is_fhir_id

_TOKEN = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_TODAY = re.compile(r"^today\(\)\s*(?:([+-])\s*(\d{1,5})\s*days?)?$")
_OF_TYPE = re.compile(r"^ofType\(\s*([A-Za-z]+)\s*\)$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")

USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


class TemplateError(ValueError):
    """A template cannot be rendered from this context; `token` names the culprit."""

    def __init__(self, token: str, reason: str) -> None:
        super().__init__(f"prefetch token {{{{{token}}}}}: {reason}")
        self.token = token
        self.reason = reason


def _split_path(path: str) -> list[str]:
    """'a.b.ofType(X).c' -> ['a', 'b', 'ofType(X)', 'c'] (dots inside parentheses are kept)."""
    parts, depth, current = [], 0, ""
    for char in path:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "." and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _walk(context: Mapping[str, Any], token: str) -> list[Any]:
    steps = _split_path(token)
    if steps[0] != "context" or len(steps) < 2:
        raise TemplateError(token, "only context paths and user tokens are supported")
    collection: list[Any] = [context]
    for step in steps[1:]:
        of_type = _OF_TYPE.match(step)
        if of_type:
            wanted = of_type.group(1)
            collection = [
                item for item in collection if isinstance(item, dict) and item.get("resourceType") == wanted
            ]
            continue
        if not _FIELD.match(step):
            raise TemplateError(token, f"unsupported path step {step!r}")
        following: list[Any] = []
        for item in collection:
            if isinstance(item, dict) and step in item:
                value = item[step]
                following.extend(value if isinstance(value, list) else [value])
        collection = following
    return collection


def _scalar(token: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise TemplateError(token, "does not lead to a simple value")
    text = str(value)
    if not text:
        raise TemplateError(token, "is empty in the context")
    return text


def _user_id(context: Mapping[str, Any], token: str) -> str:
    user = context.get("userId")
    if not isinstance(user, str) or "/" not in user:
        raise TemplateError(token, "context.userId is absent or not of the form Type/id")
    kind, _, ident = user.rpartition("/")
    kind = kind.rsplit("/", 1)[-1]  # an absolute reference keeps only its last Type/id
    if kind != USER_TOKENS[token] or not ident:
        raise TemplateError(token, f"the user is a {kind}, not a {USER_TOKENS[token]}")
    return ident


def _is_id_token(token: str) -> bool:
    """User tokens and context ids (`context.patientId`, `context.encounterId`) name FHIR ids."""
    return token in USER_TOKENS or (token.startswith("context.") and token.endswith("Id"))


def render_token(token: str, context: Mapping[str, Any], today: _dt.date, *, in_path: bool = False) -> str:
    """The URL-encoded value of one token. A value in the URL's path, or of a token that names an
    id, must be a FHIR id: `Patient/{{context.patientId}}` with a patientId of "." would read
    `Patient/`, a search of every patient."""
    day = _TODAY.match(token)
    if day:
        offset = int(day.group(2) or 0) * (-1 if day.group(1) == "-" else 1)
        return (today + _dt.timedelta(days=offset)).isoformat()
    if token in USER_TOKENS:
        values = [_user_id(context, token)]
    else:
        values = list(dict.fromkeys(_scalar(token, v) for v in _walk(context, token)))
    if not values:
        raise TemplateError(token, "has no value in the context")
    if in_path or _is_id_token(token):
        for value in values:
            if not is_fhir_id(value):
                raise TemplateError(token, f"{value[:80]!r} is not a FHIR id")
        if in_path and len(values) > 1:
            raise TemplateError(token, "has several values where one id is needed")
    # Several values form a search "or"; each is encoded, the commas are not.
    return ",".join(quote(v, safe="") for v in values)


def render_template(template: str, context: Mapping[str, Any], today: _dt.date | None = None) -> str:
    """The relative FHIR URL for one prefetch template."""
    today = today or _dt.date.today()
    query_at = template.find("?") if "?" in template else len(template)
    return _TOKEN.sub(lambda m: render_token(m.group(1), context, today, in_path=m.start() < query_at), template)
