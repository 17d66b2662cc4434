"""OpenAPI details FastAPI cannot infer: request bodies read by hand, and OperationOutcome errors.

Service, feedback and $validate routes read their bodies themselves (to answer 415/400 with an
OperationOutcome before any parsing), so their request schemas are declared here and the models
added to `components.schemas` by `build_openapi`. Every error response is documented as what the
service sends: an OperationOutcome as application/fhir+json.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .models import CdsServiceRequest, FeedbackRequest, OperationOutcome

_REF = "#/components/schemas/{model}"

_DESCRIPTIONS = {
    400: "Not strict JSON, or a request that breaks the CDS Hooks rules (wrong hook, missing context, an id "
         "that is not a FHIR id)",
    401: "Missing or invalid client JWT (only when trusted clients are configured)",
    403: "A client not on the service's machine, while no trusted clients are configured",
    404: "Unknown service",
    408: "The request body did not arrive in time",
    412: "Prefetch data the service needs could not be had",
    413: "Request body too large",
    415: "Body not sent as application/json",
    422: "Invalid path or query parameters",
    503: "The service's database is unavailable (client tokens cannot be checked for replay, feedback cannot be "
         "stored): nothing was done, try again later",
}

DOCUMENTED_MODELS: tuple[type[BaseModel], ...] = (CdsServiceRequest, FeedbackRequest, OperationOutcome)


def ERROR_RESPONSES(*statuses: int, descriptions: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:  # noqa: N802 (reads as a constant)
    """`responses=` entries documenting OperationOutcome bodies (application/fhir+json) for these
    statuses; `descriptions` replaces the generic text of some."""
    schema = {"$ref": _REF.format(model="OperationOutcome")}
    return {
        status: {
            "description": (descriptions or {}).get(status) or _DESCRIPTIONS.get(status, "Error"),
            "content": {"application/fhir+json": {"schema": schema}},
        }
        for status in statuses
    }


def json_request_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra=` declaring a required JSON body of `model`."""
    schema = {"$ref": _REF.format(model=model.__name__)}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document with the hand-read request models included (cached on the app)."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    _, definitions = models_json_schema(
        [(model, "validation") for model in DOCUMENTED_MODELS], ref_template=_REF
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name, schema in definitions.get("$defs", {}).items():
        schemas.setdefault(name, schema)
    # CDS Hooks client JWTs: required on every CDS call when trusted clients are configured.
    components["securitySchemes"] = {
        "cdsClientJwt": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "CDS Hooks client JWT (ES384/RS384, aud = the endpoint URL); required when "
            "the service has trusted clients configured, ignored otherwise",
        }
    }
    required = getattr(app.state, "settings", None) is not None and app.state.settings.auth_enabled
    for path, operations in document.get("paths", {}).items():
        if path.startswith(("/cds-services", "/fhir/")):
            for operation in operations.values():
                operation["security"] = [{"cdsClientJwt": []}] if required else [{"cdsClientJwt": []}, {}]
    _errors_as_served(document)
    app.openapi_schema = document
    return document


def _errors_as_served(document: dict[str, Any]) -> None:
    """Every error is served as an OperationOutcome (application/fhir+json): FastAPI's own 422
    (HTTPValidationError, application/json) is not what the service answers."""
    outcome = {"application/fhir+json": {"schema": {"$ref": _REF.format(model="OperationOutcome")}}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content") or {}
                if status == "422" and "HTTPValidationError" in repr(content):
                    response.update(content=outcome, description=_DESCRIPTIONS[422])
                elif "application/fhir+json" in content:
                    # FastAPI adds the route's default media type beside the one declared.
                    response["content"] = {"application/fhir+json": content["application/fhir+json"]}
    schemas = document.get("components", {}).get("schemas", {})
    text = repr(document.get("paths"))
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in schemas and f"/{unused}'" not in text:
            del schemas[unused]
