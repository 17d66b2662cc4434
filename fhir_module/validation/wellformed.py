"""Layer 1: is it well-formed FHIR JSON at all?

Parses bytes or text as JSON (rejecting duplicate keys, which `json` silently merges) and applies the
JSON representation rules the schema cannot express: no `null` outside primitive arrays, no empty
objects, arrays or strings. Content that fails here is not looked at by the later layers.
"""

from __future__ import annotations

from typing import Any

from fhir_module import strictjson
from fhir_module.validation.outcome import JSON, Issue, fhirpath_location


# Real resources nest a few dozen levels at most (Questionnaire items, nested actions); the later layers
# walk the content recursively, so deeper input is refused here rather than exhausting the stack there.
MAX_DEPTH = strictjson.MAX_DEPTH


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def parse(data: dict | str | bytes) -> tuple[dict | None, list[Issue]]:
    """The resource as a dict, or None with the fatal issues that say why it cannot be one."""
    if isinstance(data, dict):
        doc: Any = data
    else:
        if isinstance(data, (bytes, bytearray)):
            try:
                text = bytes(data).decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                return None, [Issue("fatal", "invalid", f"Content is not UTF-8: {exc}", None, JSON)]
        elif isinstance(data, str):
            text = data
        else:
            return None, [Issue("fatal", "invalid", f"Cannot validate a {type(data).__name__}", None, JSON)]
        # Strict JSON: FHIR JSON has no NaN/Infinity, no numbers beyond 64 bits, no lone surrogates.
        try:
            doc = strictjson.loads(text, max_depth=MAX_DEPTH, object_pairs_hook=_no_duplicates)
        except _DuplicateKey as exc:
            return None, [Issue("fatal", "invalid", f"Duplicate JSON property '{exc}'", None, JSON)]
        except strictjson.JsonError as exc:
            return None, [_json_issue(exc)]
    if not isinstance(doc, dict):
        return None, [Issue("fatal", "invalid", f"A FHIR resource is a JSON object, not {_json_type(doc)}", None, JSON)]
    if isinstance(data, dict):  # not parsed here (`strictjson.loads` checks the depth of what it reads)
        try:
            strictjson.check_tree(doc, MAX_DEPTH)
        except strictjson.JsonError as exc:
            return None, [_json_issue(exc)]
    rtype = doc.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        return None, [Issue("fatal", "required", "The JSON object has no resourceType", None, JSON)]
    return doc, []


def _json_issue(exc: strictjson.JsonError) -> Issue:
    if exc.code == "too-costly":
        return Issue("fatal", "too-costly", f"JSON nested deeper than {MAX_DEPTH} levels", None, JSON)
    if exc.line is not None:
        # The syntax error's message already ends with its position; lead with it as before.
        message = exc.message.rsplit(" at line ", 1)[0]
        return Issue("fatal", "invalid", f"Invalid JSON at line {exc.line}, column {exc.column}: {message}", None, JSON)
    return Issue("fatal", "invalid", f"Invalid JSON: {exc.message}", None, JSON)


def representation_issues(resource: dict[str, Any]) -> list[Issue]:
    """Violations of the FHIR JSON rules (null, empty values) anywhere in the resource."""
    issues: list[Issue] = []
    _walk(resource, resource["resourceType"], [], issues, in_primitive_array=False)
    return issues


def _walk(value: Any, base: str, path: list, issues: list[Issue], in_primitive_array: bool) -> None:
    """`path` is the value's, extended and cut back as the walk goes; a location is written only
    for an issue (most values have none)."""
    if value is None:
        if not in_primitive_array:
            issues.append(Issue("error", "invalid", "null is not allowed here in FHIR JSON", fhirpath_location(base, path), JSON))
    elif isinstance(value, str):
        if value == "":
            issues.append(Issue("error", "invalid", "Empty strings are not allowed in FHIR JSON", fhirpath_location(base, path), JSON))
    elif isinstance(value, list):
        if not value:
            issues.append(Issue("error", "invalid", "Empty arrays are not allowed in FHIR JSON", fhirpath_location(base, path), JSON))
        # null is how FHIR JSON aligns a primitive array with its `_name` extension array.
        primitive = bool(any(not isinstance(v, (dict, list)) for v in value) or (path and str(path[-1]).startswith("_")))
        for i, item in enumerate(value):
            path.append(i)
            _walk(item, base, path, issues, in_primitive_array=primitive)
            path.pop()
    elif isinstance(value, dict):
        if not value:
            issues.append(Issue("error", "invalid", "Empty objects are not allowed in FHIR JSON", fhirpath_location(base, path), JSON))
        for key, item in value.items():
            if key == "resourceType" and path:
                continue
            path.append(key)
            _walk(item, base, path, issues, in_primitive_array=False)
            path.pop()


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null"
