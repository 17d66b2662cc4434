"""The resources under check, found by canonical URL or by `Type/id`, and the status rule."""

from __future__ import annotations

from typing import Any, Iterable

# What each artifact type calls "in use"; canonical resources share one lifecycle (PublicationStatus).
_IN_USE = {"DocumentReference": "current", "MedicationKnowledge": "active"}


def is_eca_rule(plan: dict[str, Any]) -> bool:
    """A PlanDefinition the engine applies (type eca-rule)."""
    coding = plan.get("type").get("coding") if isinstance(plan.get("type"), dict) else None
    return any(isinstance(c, dict) and c.get("code") == "eca-rule" for c in (coding if isinstance(coding, list) else []))


def label(resource: dict[str, Any]) -> str:
    return f"{resource.get('resourceType', 'Resource')}/{resource.get('id', '?')}"


def status_problem(resource: dict[str, Any], allow_draft: bool) -> str | None:
    """Why this artifact may not serve, if it may not: only active knowledge serves, draft only
    when drafts are allowed, retired (or anything else) never."""
    status = resource.get("status")
    wanted = _IN_USE.get(str(resource.get("resourceType")), "active")
    if status == wanted:
        return None
    if status == "draft" and wanted == "active":
        return None if allow_draft else "status is draft: draft knowledge serves only when drafts are allowed (--allow-draft)"
    if status == "retired":
        return "status is retired: retired knowledge never serves"
    if status is None:
        return f"has no status: only {wanted} knowledge serves"
    return f"status is {status!r}: only {wanted} knowledge serves"


class Index:
    """Every resource given, by canonical URL (versions kept apart) and by `Type/id`."""

    def __init__(self, resources: Iterable[Any]) -> None:
        self.resources = [r for r in resources if isinstance(r, dict) and isinstance(r.get("resourceType"), str)]
        self.by_url: dict[str, list[dict[str, Any]]] = {}
        self.by_key: dict[str, dict[str, Any]] = {}
        for resource in self.resources:
            if isinstance(resource.get("url"), str):
                self.by_url.setdefault(resource["url"], []).append(resource)
            self.by_key.setdefault(label(resource), resource)

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["resourceType"] == resource_type]

    def canonical(self, reference: Any, resource_type: str | None = None) -> dict[str, Any] | None:
        """The resource a canonical reference (`url` or `url|version`) names; for resources that
        have no canonical URL (DocumentReference, MedicationKnowledge in R4), a `.../Type/id` URL."""
        if not isinstance(reference, str) or not reference:
            return None
        url, _, version = reference.partition("|")
        for resource in self.by_url.get(url, []):
            if resource_type and resource["resourceType"] != resource_type:
                continue
            if version and resource.get("version") != version:
                continue
            return resource
        key = "/".join(url.rstrip("/").split("/")[-2:])
        found = self.by_key.get(key)
        if found is not None and (resource_type is None or found["resourceType"] == resource_type):
            if not isinstance(found.get("url"), str):  # a canonical resource is found by its own url only
                return found
        return None
