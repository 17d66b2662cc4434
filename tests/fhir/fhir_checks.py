"""Helpers of the FHIR export tests: the levomilnacipran module, its exports (built once), the official schemas."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from fhir_module.fhir.bundle import build_resources
from fhir_module.knowledge import Knowledge, builtin_module_dir, load_knowledge

VERSIONS = ("R4", "R5")


@cache
def knowledge() -> Knowledge:
    return load_knowledge(builtin_module_dir("levomilnacipran"))


@cache
def exported(version: str) -> tuple[dict[str, Any], ...]:
    """Every resource of one version's export (built once per session; tests must not modify them)."""
    return tuple(build_resources(knowledge(), version))


@cache
def _schema(version: str) -> dict[str, Any]:
    text = resources.files("fhir_module.data.schemas").joinpath(f"fhir.{version.lower()}.schema.json").read_text("utf-8")
    return json.loads(text)


@cache
def schema_validator(version: str, resource_type: str) -> jsonschema.Draft6Validator:
    """The official schema entered at one resource type's definition (compiled once per type).

    Entering at the type rather than at the top-level `oneOf` gives errors that name the element,
    not "is not valid under any of the given schemas".
    """
    schema = _schema(version)
    if resource_type not in schema["definitions"]:
        raise AssertionError(f"{resource_type} is not a {version} resource type")
    root = {"$ref": f"#/definitions/{resource_type}", "definitions": schema["definitions"]}
    return jsonschema.Draft6Validator(root)


def schema_errors(version: str, resource: dict[str, Any]) -> list[str]:
    validator = schema_validator(version, resource["resourceType"])
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}"
            for e in validator.iter_errors(resource)]


def model_class(version: str, resource_type: str) -> Any:
    """fhir.resources models: R4B stands in for R4 (see the architecture notes), R5 is the default."""
    if version == "R4":
        from fhir.resources.R4B import get_fhir_model_class
    else:
        from fhir.resources import get_fhir_model_class
    return get_fhir_model_class(resource_type)


