"""OpenAPI details FastAPI cannot infer: request bodies read by hand, and OperationOutcome errors.

Service and feedback routes read their bodies themselves (to answer 415/400 with an
OperationOutcome before any parsing), so their request schemas are declared here and the models
added to `components.schemas` by `build_openapi`.
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
    400: "Malformed JSON, or a request that breaks the CDS Hooks rules (wrong hook, missing context)",
    401: "Missing or invalid client JWT (only when trusted clients are configured)",
    404: "Unknown service",
    412: "Prefetch data the service needs could not be had",
    413: "Request body too large",
    415: "Body not sent as application/json",
    422: "Invalid path or query parameters",
}

REQUEST_MODELS: tuple[type[BaseModel], ...] = (CdsServiceRequest, FeedbackRequest)


def ERROR_RESPONSES(*statuses: int) -> dict[int | str, dict[str, Any]]:  # noqa: N802 (reads as a constant)
    """`responses=` entries documenting OperationOutcome bodies for these statuses."""
    schema = {"$ref": _REF.format(model="OperationOutcome")}
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, "Error"),
            "model": OperationOutcome,
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
        [(model, "validation") for model in REQUEST_MODELS], ref_template=_REF
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
    app.openapi_schema = document
    return document
