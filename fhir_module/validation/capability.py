"""The CapabilityStatement of the service's FHIR endpoint (`GET /fhir/metadata`).

The endpoint does one thing: `$validate`, at system level and on every resource type, against the
FHIR R4 core definitions and the module's profiles (each type lists those that apply to it as
`supportedProfile`). Nothing is stored or searched, so no other interaction is declared.
"""

from __future__ import annotations

from typing import Any

from .definitions import definitions
from .schema import fhir_schema

VALIDATE = "http://hl7.org/fhir/OperationDefinition/Resource-validate"
CORE = "http://hl7.org/fhir/StructureDefinition/"


def _resource_types() -> list[tuple[str, list[str]]]:
    """(resource type, module profiles of that type), every concrete R4 resource type."""
    defs = definitions()
    profiles: dict[str, list[str]] = {}
    for url in defs.module_profiles:
        profiles.setdefault(defs.type_of_profile(url) or "", []).append(url)
    # Only R4's own types: the definitions also hold a few from later versions (SubscriptionStatus).
    r4 = fhir_schema("R4").resource_types
    return [(name, profiles.get(name, [])) for name in defs.resource_types if name in r4]


def capability_statement(*, base_url: str, software_version: str, date: str, auth_enabled: bool) -> dict[str, Any]:
    """The statement for an endpoint at `base_url` (…/fhir); `date` is when its knowledge last changed."""
    operation = {"name": "validate", "definition": VALIDATE}
    rest: dict[str, Any] = {
        "mode": "server",
        "documentation": (
            "Validation only: POST [base]/$validate or [base]/[type]/$validate with a resource, or a "
            "Parameters holding `resource` and optional `profile` parameters (also ?profile=URL); the "
            "answer is an OperationOutcome. Nothing is stored."
        ),
        "resource": [
            {
                "type": name,
                "profile": CORE + name,
                **({"supportedProfile": profiles} if profiles else {}),
                "operation": [operation],
            }
            for name, profiles in _resource_types()
        ],
        "operation": [operation],
    }
    if auth_enabled:
        rest["security"] = {
            "cors": True,
            "description": "A CDS client JWT (ES384/RS384, signed by a configured trusted client) as a Bearer token.",
        }
    return {
        "resourceType": "CapabilityStatement",
        "id": "fhir-module-validation",
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">fhir_module FHIR validation endpoint: '
                   "$validate against FHIR R4 and the module profiles.</div>",
        },
        "url": f"{base_url}/metadata",
        "version": software_version,
        "name": "FhirModuleValidation",
        "title": "fhir_module FHIR validation endpoint",
        "status": "active",
        "date": date,
        "publisher": "fhir_module",
        "description": "Validates FHIR R4 resources against the core specification and the module's profiles.",
        "kind": "instance",
        "software": {"name": "fhir_module", "version": software_version},
        "implementation": {"description": "fhir_module $validate", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [rest],
    }
