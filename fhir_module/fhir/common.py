"""What every knowledge artifact carries: canonical identity, version, status, date, publisher, profile.

CRMI/CPG conventions: a canonical `url` (base/Type/id), the module's `version`, a computable `name`,
`status`, `date` from the knowledge version (never the clock, so exports are byte-identical) and
`publisher`.
"""

from __future__ import annotations

from html import escape
from typing import Any

from fhir_module.knowledge import Knowledge

from .canonical import BASE

R4 = "R4"
R5 = "R5"
FHIR_VERSIONS = {R4: "4.0.1", R5: "5.0.0"}


def canonical_url(resource_type: str, resource_id: str) -> str:
    return f"{BASE}/{resource_type}/{resource_id}"


def scoped_id(knowledge: Knowledge, local_id: str) -> str:
    """The module-scoped id of one of its artifacts: `<module>-<local id>`, unless it already is one.

    Modules are served and loaded into FHIR servers side by side: two modules' `maoi` value sets
    (or rule topics) must not overwrite each other, so every id carries its module's id.
    """
    module = knowledge.module["id"]
    return local_id if local_id == module or local_id.startswith(f"{module}-") else f"{module}-{local_id}"


def valueset_url(knowledge: Knowledge, vs_id: str) -> str:
    """The canonical URL of one of the module's value sets, named by its id in the knowledge file."""
    return canonical_url("ValueSet", scoped_id(knowledge, vs_id))


def topic_system(knowledge: Knowledge) -> str:
    """The module's CodeSystem of rule topics (card `source.topic`)."""
    return canonical_url("CodeSystem", scoped_id(knowledge, "rule-topic"))


def override_reason_system(knowledge: Knowledge) -> str:
    """The module's CodeSystem of override reasons (offered on its warning and critical cards)."""
    return canonical_url("CodeSystem", scoped_id(knowledge, "override-reason"))


def computable_name(text: str) -> str:
    """`levomilnacipran-order-select` → `LevomilnacipranOrderSelect` (CRMI names are identifiers)."""
    return "".join(part[:1].upper() + part[1:] for part in text.replace("_", "-").split("-") if part)


def artifact(
    knowledge: Knowledge,
    resource_type: str,
    resource_id: str,
    *,
    title: str,
    profile: str | None,
    description: str | None = None,
    canonical: bool = True,
) -> dict[str, Any]:
    """The header of one artifact; builders add their own elements after it."""
    module = knowledge.module
    resource: dict[str, Any] = {"resourceType": resource_type, "id": resource_id}
    if profile:
        resource["meta"] = {"profile": [profile]}
    resource["text"] = narrative(title, description)
    if canonical:
        resource["url"] = canonical_url(resource_type, resource_id)
        resource["version"] = module["version"]
        resource["name"] = computable_name(resource_id)
        resource["title"] = title
    resource["status"] = module["status"]
    if canonical:
        resource["date"] = module["date"]
        resource["publisher"] = module["publisher"]
        if description:
            resource["description"] = description
    return resource


def narrative(title: str, description: str | None = None) -> dict[str, Any]:
    """A generated narrative (what a person sees of the resource in a FHIR server's UI)."""
    body = f"<p><b>{escape(title)}</b></p>" + (f"<p>{escape(description)}</p>" if description else "")
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'}


def monograph_url(knowledge: Knowledge, section_id: str | None = None) -> str:
    url = knowledge.module["monograph"]["url"]
    return f"{url}#{section_id}" if section_id else url
