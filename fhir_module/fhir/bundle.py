"""All artifacts of the module, and the Bundle that carries them (collection or transaction).

Output is deterministic: resources sorted by (resourceType, id), ids derived from the knowledge, no
timestamps (dates come from the knowledge version), and `dumps` writes sorted keys. Two exports of the
same knowledge are byte-identical, whatever the day.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources as package_data
from typing import Any, Sequence

from fhir_module.knowledge import Knowledge

from .common import FHIR_VERSIONS
from .library import absolute_url, build_library

BUNDLE_TYPES = ("collection", "transaction")
_MAX_ID = 64  # FHIR ids are at most 64 characters


def _check_version(version: str) -> None:
    if version not in FHIR_VERSIONS:
        raise ValueError(f"unsupported FHIR version {version!r}: use one of {', '.join(FHIR_VERSIONS)}")


def build_resources(knowledge: Knowledge, version: str) -> list[dict[str, Any]]:
    """Every artifact of the module for one FHIR version, the manifest Library included, sorted."""
    _check_version(version)
    # Imported here so that each builder module stays importable on its own.
    from .activitydefinitions import build_activitydefinitions
    from .clinicalusedefinition import build_clinical_use_definitions
    from .codesystems import build_codesystems
    from .documentreference import build_document_reference
    from .medicationknowledge import build_medication_knowledge
    from .plandefinitions import build_plandefinitions
    from .valuesets import build_valuesets

    resources: list[dict[str, Any]] = []
    for build in (build_plandefinitions, build_activitydefinitions, build_valuesets, build_codesystems,
                  build_medication_knowledge, build_document_reference, build_clinical_use_definitions):
        resources += build(knowledge, version)
    resources.append(build_library(knowledge, version, resources))
    if version != "R4":
        # The module's profiles are R4 (there is no R5 one yet): an R5 artifact claiming them would
        # send an R5 server or validator after a definition that does not exist for its version.
        for resource in resources:
            if "profile" in resource.get("meta", {}):
                del resource["meta"]["profile"]
                if not resource["meta"]:
                    del resource["meta"]
    resources.sort(key=lambda r: (r["resourceType"], r["id"]))
    seen: set[tuple[str, str]] = set()
    for resource in resources:
        key = (resource["resourceType"], resource["id"])
        if key in seen:  # two builders chose the same id: one would silently replace the other on a server
            raise ValueError(f"two artifacts share the id {key[0]}/{key[1]}")
        seen.add(key)
    return resources


def conformance_resources(version: str) -> list[dict[str, Any]]:
    """The module's own profiles, their extensions and the value sets they bind (R4 only), sorted
    like the artifacts: what a FHIR server needs to check the artifacts' `meta.profile` claims."""
    if version != "R4":
        return []
    folder = package_data.files("fhir_module.data").joinpath("definitions/profiles")
    if not folder.is_dir():
        return []
    found = [json.loads(f.read_text("utf-8")) for f in folder.iterdir() if f.name.endswith(".json")]
    return sorted(found, key=lambda r: (r["resourceType"], r["id"]))


def build_bundle(knowledge: Knowledge, version: str, bundle_type: str = "collection") -> dict[str, Any]:
    """A Bundle of every artifact; a transaction PUTs each one at `Type/id` so ids are kept."""
    return build_modules_bundle([knowledge], version, bundle_type)


def merge_resources(modules: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The artifacts of several modules side by side: a resource two modules both make is kept once
    when it is the same byte for byte; the same id with other content is refused (it would overwrite)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for resources in modules:
        for resource in resources:
            key = (resource["resourceType"], resource["id"])
            if key in merged and dumps(merged[key]) != dumps(resource):
                raise ValueError(f"two modules make {key[0]}/{key[1]} with different content")
            merged[key] = resource
    return list(merged.values())


def build_modules_bundle(modules: Sequence[Knowledge], version: str, bundle_type: str = "collection") -> dict[str, Any]:
    """One Bundle of every artifact of one or several modules."""
    if bundle_type not in BUNDLE_TYPES:
        raise ValueError(f"unsupported bundle type {bundle_type!r}: use one of {', '.join(BUNDLE_TYPES)}")
    if not modules:
        raise ValueError("no module to export")
    resources = merge_resources([build_resources(knowledge, version) for knowledge in modules])
    if bundle_type == "transaction":
        # Loaded into a FHIR server, the artifacts come with the profiles they claim, so the server
        # can validate them (a collection is the knowledge the service reads: artifacts only).
        resources = sorted(merge_resources([resources, conformance_resources(version)]),
                           key=lambda r: (r["resourceType"], r["id"]))
    entries = []
    for resource in resources:
        entry: dict[str, Any] = {"fullUrl": absolute_url(resource), "resource": resource}
        if bundle_type == "transaction":
            entry["request"] = {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
        entries.append(entry)
    names = "-".join(knowledge.module["id"] for knowledge in modules)
    return {
        "resourceType": "Bundle",
        "id": _bundle_id(names, f"{version.lower()}-{bundle_type}"),
        "type": bundle_type,
        "entry": entries,
    }


def _bundle_id(names: str, suffix: str) -> str:
    """`<module ids>-<version>-<type>`, shortened with a digest when it would pass FHIR's 64 characters."""
    resource_id = f"{names}-{suffix}"
    if len(resource_id) <= _MAX_ID:
        return resource_id
    digest = hashlib.sha1(names.encode("utf-8")).hexdigest()[:12]
    return f"modules-{digest}-{suffix}"


def dumps(resource: Any) -> str:
    """The one JSON form of every export: sorted keys, two-space indent, UTF-8 text, final newline."""
    return json.dumps(resource, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
