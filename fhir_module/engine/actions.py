"""Reading eca-rule PlanDefinition actions: extensions, variables, conditions, topic, severity.

Shared by the applier (conditions, variables), the suggestion maker and the card writer.
"""

from __future__ import annotations

from typing import Any

from .expressions import truthy
from .scope import Scope

EXT_VARIABLE = "http://hl7.org/fhir/StructureDefinition/variable"
SEVERITY = {"routine": "info", "urgent": "warning", "asap": "critical", "stat": "critical"}


def ext(element: dict[str, Any], suffix: str) -> list[dict[str, Any]]:
    return [e for e in element.get("extension") or [] if str(e.get("url", "")).endswith(suffix)]


def parts(extension: dict[str, Any]) -> dict[str, Any]:
    """Sub-extensions of a complex extension by name: their value (string or Expression text)."""
    parts = {}
    for part in extension.get("extension") or []:
        if "valueString" in part:
            parts[part["url"]] = part["valueString"]
        elif "valueExpression" in part:
            parts[part["url"]] = part["valueExpression"].get("expression", "")
    return parts


def variables(action: dict[str, Any]) -> dict[str, str]:
    return {
        e["valueExpression"]["name"]: e["valueExpression"]["expression"]
        for e in action.get("extension") or []
        if e.get("url") == EXT_VARIABLE and isinstance(e.get("valueExpression"), dict)
        and e["valueExpression"].get("name") and e["valueExpression"].get("expression")
    }


def policies(action: dict[str, Any]) -> list[str]:
    """The operational definitions (policy parameters) an action uses, for the card to state."""
    return [
        e["valueExpression"]["description"][len("policy: "):]
        for e in action.get("extension") or []
        if e.get("url") == EXT_VARIABLE and str((e.get("valueExpression") or {}).get("description", "")).startswith("policy: ")
    ]


def holds(action: dict[str, Any], scope: Scope) -> bool:
    for condition in action.get("condition") or []:
        if condition.get("kind", "applicability") != "applicability":
            continue
        expression = (condition.get("expression") or {}).get("expression")
        if expression and not truthy(scope.evaluate(expression)):
            return False
    return True


def action_type(action: dict[str, Any]) -> str | None:
    return next((c.get("code") for c in (action.get("type") or {}).get("coding") or []), None)


def topic_coding(action: dict[str, Any]) -> dict[str, Any] | None:
    """The action's topic as its module codes it (system, code, display)."""
    code = action.get("code")
    concepts = code if isinstance(code, list) else [code] if isinstance(code, dict) else []
    return next((c for concept in concepts for c in concept.get("coding") or []
                 if isinstance(c, dict) and c.get("code")), None)


def topic(action: dict[str, Any]) -> str | None:
    coding = topic_coding(action)
    return coding["code"] if coding else None


def doc_url(doc: dict[str, Any]) -> str | None:
    """A RelatedArtifact's address: `url` in R4, `document.url` in R5."""
    return doc.get("url") or (doc.get("document") or {}).get("url")
