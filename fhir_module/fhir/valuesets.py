"""ValueSets and CodeSystems of the module.

A ValueSet lists only verified codes. Hierarchies (`X.x`) become `is-a` filters and ranges (`A-B`)
`regex` filters that take in exactly the codes between the two ends, so nothing outside the
terminology is ever enumerated. Names that identify a member when an EHR sends no code (ingredients
without a verified code, brand names) travel with the ValueSet in the recognition-name extension.
"""

from __future__ import annotations

from typing import Any

from fhir_module.knowledge import Knowledge
from fhir_module.knowledge.model import Include

from .canonical import EXT_RECOGNITION_NAME, PROFILE_CODE_SYSTEM, PROFILE_VALUE_SET
from .common import artifact, override_reason_system, scoped_id, topic_system


def _include(include: Include) -> dict[str, Any]:
    element: dict[str, Any] = {"system": include.system}
    if include.concepts:
        element["concept"] = [{"code": code, **({"display": display} if display else {})}
                              for code, display in include.concepts]
    if include.filter_op == "is-a":
        element["filter"] = [{"property": "concept", "op": "is-a", "value": include.filter_value}]
    elif include.filter_op == "regex":
        element["filter"] = [{"property": "code", "op": "regex", "value": include.filter_value}]
    return element


def build_valuesets(knowledge: Knowledge, version: str) -> list[dict[str, Any]]:
    resources = []
    for vs in knowledge.valuesets:
        resource = artifact(
            knowledge, "ValueSet", scoped_id(knowledge, vs.id), title=vs.title, profile=PROFILE_VALUE_SET,
            description=f"{vs.title}: codes from the module's verified terminology.",
        )
        if vs.names:
            resource["extension"] = [{"url": EXT_RECOGNITION_NAME, "valueString": name} for name in vs.names]
        if vs.includes:
            resource["compose"] = {"include": [_include(include) for include in vs.includes]}
        else:
            # No verified code at all: an empty expansion says so; members are recognised by name only.
            resource["expansion"] = {"timestamp": knowledge.module["date"], "total": 0}
        resources.append(resource)
    return resources


def _code_system(knowledge: Knowledge, url: str, title: str, concepts: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    resource_id = url.rsplit("/", 1)[1]
    resource = artifact(knowledge, "CodeSystem", resource_id, title=title, profile=PROFILE_CODE_SYSTEM,
                        description=f"{title} of the {knowledge.module['title']}.")
    resource.update(
        caseSensitive=True,
        content="complete",
        count=len(concepts),
        concept=[{"code": code, "display": display} for code, display in concepts],
    )
    return resource


def build_codesystems(knowledge: Knowledge, version: str) -> list[dict[str, Any]]:
    return [
        _code_system(knowledge, topic_system(knowledge), "Rule topics", knowledge.topics),
        _code_system(knowledge, override_reason_system(knowledge), "Override reasons", knowledge.override_reasons),
    ]
