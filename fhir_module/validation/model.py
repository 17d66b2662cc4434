"""Layer 3: model checks with `fhir.resources` (R5 models for R5, R4B models for R4).

The pydantic models check element types, primitive formats and the elements the models require. R4 has no
model of its own in `fhir.resources` 8; R4B's is used, as its JSON matches R4 for the module's resource
types. For a resource type R4B does not have (R4's MedicinalProduct*, for instance) the layer says it
was not run instead of reporting R4B's view of R4 as errors.
"""

from __future__ import annotations

from typing import Any

import pydantic

from fhir_module.validation.outcome import MODEL, Issue, fhirpath_location


def _model_class(version: str, resource_type: str) -> Any:
    if version == "R4":
        from fhir.resources.R4B import get_fhir_model_class
    else:
        from fhir.resources import get_fhir_model_class
    try:
        return get_fhir_model_class(resource_type)
    except (ValueError, KeyError, AttributeError, ImportError):
        return None


def check(resource: dict[str, Any], version: str) -> list[Issue]:
    """Model issues of a resource and everything nested in it."""
    rtype = resource["resourceType"]
    model = _model_class(version, rtype)
    label = "R4B model (for R4)" if version == "R4" else "R5 model"
    if model is None:
        return [Issue("information", "not-supported", f"No {label} for {rtype}: model checks not run", rtype, MODEL)]
    try:
        model.model_validate(resource)
    except pydantic.ValidationError as exc:
        return [_issue(err, rtype) for err in exc.errors()]
    except (ValueError, TypeError) as exc:  # some model validators raise outside pydantic's error type
        return [Issue("error", "structure", f"{label} rejected the resource: {exc}", rtype, MODEL)]
    return []


def _issue(error: Any, base: str) -> Issue:
    loc = [seg for seg in error.get("loc", ()) if isinstance(seg, (str, int))]
    where = fhirpath_location(base, loc)
    kind = error.get("type", "")
    msg = error.get("msg", "invalid")
    if kind == "missing" or "is required" in msg:
        return Issue("error", "required", f"Required element missing: {msg}", where, MODEL)
    if kind == "extra_forbidden":
        return Issue("error", "structure", f"Unknown element: {msg}", where, MODEL)
    return Issue("error", "value" if kind == "value_error" else "structure", msg, where, MODEL)
