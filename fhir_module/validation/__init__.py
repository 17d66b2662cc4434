"""Validation of FHIR R4/R5 resources and bundles against the base specification and the module's profiles.

    from fhir_module.validation import validate, has_errors
    outcome = validate(bundle_dict)          # an OperationOutcome (dict)
    if has_errors(outcome): ...

Layers: JSON well-formedness, the official FHIR JSON schema, `fhir.resources` models, and conformance to
StructureDefinition snapshots (cardinality, types, fixed/pattern values, slices, required bindings,
FHIRPath invariants). The CLI is in `cli`, the FastAPI router for `$validate` in `api`.
"""


from __future__ import annotations

from typing import Any

__all__ = ["validate", "has_errors"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the service imports `validation.runner` for its $validate workers, and
    # the validator's layers (jsonschema, fhir.resources, definitions) belong in those workers, not
    # in the process that answers hooks.
    if name == "validate":
        from fhir_module.validation.validator import validate

        return validate
    if name == "has_errors":
        from fhir_module.validation.outcome import has_errors

        return has_errors
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
