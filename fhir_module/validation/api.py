"""`$validate` over HTTP: `POST /fhir/$validate` and `POST /fhir/{type}/$validate`.

The body is a resource, or a Parameters with a `resource` parameter and optional `profile` parameters
(valueUri/valueCanonical/valueString), as FHIR's `$validate` operation defines. The answer is the
OperationOutcome, with status 200 even when it reports errors (that is the operation's result); only a
body that is not JSON at all gets a 400. A Parameters without a `resource` parameter is validated as the
Parameters resource it is.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from fhir_module.api.body import read_json_body
from fhir_module.api.errors import ApiError
from fhir_module.validation.validator import validate

router = APIRouter(tags=["validation"])

FHIR_JSON = "application/fhir+json"


async def _run(request: Request, resource_type: str | None) -> JSONResponse:
    # A body that is not strict JSON (NaN, 64-bit overflow, lone surrogates, too deep) is a 400
    # like on every endpoint; the raw bytes then go to layer 1 for its duplicate-key check.
    try:
        data = await read_json_body(request)
    except ApiError as exc:  # answered here too: the router also runs in apps without our handlers
        return exc.response()
    body = await request.body()
    fhir_version = request.query_params.get("fhirVersion")
    profiles = list(request.query_params.getlist("profile"))
    # The raw body keeps layer 1's duplicate-key check when the body is the resource itself.
    payload: Any = body
    if isinstance(data, dict) and data.get("resourceType") == "Parameters" and _has_resource_parameter(data):
        payload, given = _from_parameters(data)
        profiles += given
    # Validating a large bundle takes a while: off the event loop, so other requests go on meanwhile.
    outcome = await run_in_threadpool(validate, payload, fhir_version=fhir_version, profiles=profiles or None)
    given_type = payload.get("resourceType") if isinstance(payload, dict) else data.get("resourceType") if isinstance(data, dict) else None
    if resource_type and given_type and given_type != resource_type:
        mismatch = {"severity": "error", "code": "invalid", "diagnostics": f"[request] Expected a {resource_type}, got a {given_type}"}
        outcome["issue"] = [mismatch, *[i for i in outcome["issue"] if i.get("diagnostics") != "No issues"]]
    return JSONResponse(outcome, media_type=FHIR_JSON)


def _has_resource_parameter(params: dict[str, Any]) -> bool:
    items = params.get("parameter")
    return isinstance(items, list) and any(isinstance(p, dict) and p.get("name") == "resource" for p in items)


def _from_parameters(params: dict[str, Any]) -> tuple[Any, list[str]]:
    resource, profiles = None, []
    for p in params.get("parameter", []) if isinstance(params.get("parameter"), list) else []:
        if not isinstance(p, dict):
            continue
        if p.get("name") == "resource":
            resource = p.get("resource")
        elif p.get("name") == "profile":
            for key in ("valueUri", "valueCanonical", "valueString", "valueUrl"):
                if isinstance(p.get(key), str):
                    profiles.append(p[key])
    return resource, profiles


@router.post("/fhir/$validate")
async def validate_any(request: Request) -> JSONResponse:
    """Validate a resource (or a Parameters wrapping one) against the base spec and its profiles."""
    return await _run(request, None)


@router.post("/fhir/{resource_type}/$validate")
async def validate_typed(resource_type: str, request: Request) -> JSONResponse:
    """Validate a resource of the given type; a resource of another type is an error in the outcome."""
    return await _run(request, resource_type)
