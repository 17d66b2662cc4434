"""The manifest Library: one asset-collection that lists every artifact of the module (CRMI).

A consumer that loads the Library learns what the module is made of, each artifact by its canonical
(`url|version`) or, for resources that have no canonical URL, by the absolute URL the bundle gives it.
"""

from __future__ import annotations

from typing import Any, Sequence

from fhir_module.knowledge import Knowledge

from .canonical import BASE, PROFILE_LIBRARY
from .common import artifact

LIBRARY_TYPE = "http://terminology.hl7.org/CodeSystem/library-type"


def library_id(knowledge: Knowledge) -> str:
    return knowledge.module["id"]


def absolute_url(resource: dict[str, Any]) -> str:
    """A canonical resource's `url`, else `{BASE}/{Type}/{id}` (also the bundle's fullUrl)."""
    return resource.get("url") or f"{BASE}/{resource['resourceType']}/{resource['id']}"


def artifact_reference(resource: dict[str, Any]) -> str:
    """`url|version` for canonical resources (CRMI pins versions), else the absolute URL."""
    if "url" in resource and "version" in resource:
        return f"{resource['url']}|{resource['version']}"
    return absolute_url(resource)


def build_library(knowledge: Knowledge, version: str, resources: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The manifest of `resources`, listed in (resourceType, id) order whatever order they come in."""
    module = knowledge.module
    library = artifact(knowledge, "Library", library_id(knowledge), title=module["title"], profile=PROFILE_LIBRARY,
                       description=module.get("description"))
    library["name"] = module["name"]
    if module.get("usage"):
        library["usage"] = module["usage"]
    library["type"] = {"coding": [{"system": LIBRARY_TYPE, "code": "asset-collection"}]}
    members = sorted((r for r in resources if r is not library), key=lambda r: (r["resourceType"], r["id"]))
    library["relatedArtifact"] = [
        {
            "type": "composed-of",
            "display": f"{r['resourceType']}/{r['id']}" + (f": {r['title']}" if r.get("title") else ""),
            "resource": artifact_reference(r),
        }
        for r in members
    ]
    return library
