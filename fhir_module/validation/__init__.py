"""Validation of FHIR R4/R5 resources and bundles against the base specification and the module's profiles.

    from fhir_module.validation import validate, has_errors
    outcome = validate(bundle_dict)          # an OperationOutcome (dict)
    if has_errors(outcome): ...

Layers: JSON well-formedness, the official FHIR JSON schema, `fhir.resources` models, and conformance to
StructureDefinition snapshots (cardinality, types, fixed/pattern values, slices, required bindings,
FHIRPath invariants). The CLI is in `cli`, the FastAPI router for `$validate` in `api`.
"""

from fhir_module.validation.outcome import has_errors
from fhir_module.validation.validator import validate

__all__ = ["validate", "has_errors"]
