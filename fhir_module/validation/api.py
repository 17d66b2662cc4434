"""`$validate` over HTTP: `POST /fhir/$validate` and `POST /fhir/{type}/$validate`.

The body is a resource, or a Parameters with a `resource` parameter and optional `profile` parameters
(valueUri/valueCanonical/valueString), as FHIR's `$validate` operation defines. The answer is the
OperationOutcome, with status 200 even when it reports errors (that is the operation's result). A
body that is not strict JSON is a 400; content past the limits (resources, time) a 413 too-costly;
a call while every validation worker is busy and others wait a 503 with Retry-After (runner.py).
A Parameters without a `resource` parameter is validated as the Parameters resource it is.
"""

from __future__ import annotations


from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from fhir_module.api.body import read_body, require_json_content_type
from fhir_module.api.errors import ApiError
from fhir_module.api.openapi import ERROR_RESPONSES
from fhir_module.validation.runner import ClientGone, Refused, ValidationJob, ValidationRunner, shared_runner

router = APIRouter(tags=["validation"])
# Public like a FHIR server's /metadata: what the endpoint can do, no data.
metadata_router = APIRouter(tags=["validation"])

FHIR_JSON = "application/fhir+json"

def runner_of(request: Request) -> ValidationRunner:
    """The app's runner (create_app sets one from the settings), else the default one."""
    return getattr(request.app.state, "validation_runner", None) or shared_runner()


async def _run(request: Request, resource_type: str | None) -> Response:
    try:
        require_json_content_type(request)  # FHIR JSON only: an XML or form body is 415, not a parse error
        body = await read_body(request)
    except ApiError as exc:  # answered here too: the router also runs in apps without our handlers
        return exc.response()
    job = ValidationJob(body=body, resource_type=resource_type, fhir_version=request.query_params.get("fhirVersion"),
                        profiles=tuple(request.query_params.getlist("profile")))

    async def client_gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    try:
        outcome = await runner_of(request).run(job, client_gone)
    except Refused as refused:
        return ApiError(refused.status, refused.message, code=refused.code, headers=refused.headers).response()
    except ClientGone:
        return Response(status_code=499)  # nobody reads it (nginx's "client closed request")
    return JSONResponse(outcome, media_type=FHIR_JSON)


_OUTCOME = {"$ref": "#/components/schemas/OperationOutcome"}
_RESOURCE = {"type": "object", "required": ["resourceType"], "additionalProperties": True,
             "properties": {"resourceType": {"type": "string", "pattern": "^[A-Z][A-Za-z]+$"}},
             "description": "A FHIR resource or Bundle (JSON), or a Parameters with a `resource` parameter and "
                            "optional `profile` parameters"}
_DOCUMENTED = dict(
    responses={
        200: {"description": "The validation's OperationOutcome (200 even when it reports errors: that is the "
                             "operation's result)", "content": {FHIR_JSON: {"schema": _OUTCOME}}},
        **ERROR_RESPONSES(400, 401, 403, 408, 413, 415, 422, 503, descriptions={
            400: "Not strict JSON (NaN, numbers beyond 64 bits, lone surrogates, nesting past 64), or empty",
            413: "Larger than the body limit, more resources than FHIR_MODULE_VALIDATE_MAX_RESOURCES, or "
                 "validation longer than FHIR_MODULE_VALIDATE_TIMEOUT (too-costly; the work is stopped)",
            415: "A body that is not declared as FHIR JSON (application/fhir+json or application/json)",
            503: "Every validation worker busy and others waiting, or a validation starved of CPU past its time limit on a busy machine (both with Retry-After), or the service's database "
                 "unavailable for the client token check"}),
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {FHIR_JSON: {"schema": _RESOURCE},
                                                      "application/json": {"schema": _RESOURCE}}},
        "parameters": [
            {"name": "fhirVersion", "in": "query", "required": False,
             "schema": {"type": "string", "enum": ["R4", "R5", "4.0", "4.0.1", "5.0", "5.0.0"]},
             "description": "FHIR version to validate against (default: from the resource, else R4)"},
            {"name": "profile", "in": "query", "required": False, "style": "form", "explode": True,
             "schema": {"type": "array", "items": {"type": "string"}},
             "description": "Profile canonical URL to validate against as well (repeatable)"},
        ],
    },
)


@router.post("/fhir/$validate", summary="Validate a FHIR resource", **_DOCUMENTED)
async def validate_any(request: Request) -> Response:
    """Validate a resource (or a Parameters wrapping one) against the base spec and its profiles."""
    return await _run(request, None)


@router.post("/fhir/{resource_type}/$validate", summary="Validate a FHIR resource of a type", **_DOCUMENTED)
async def validate_typed(resource_type: str, request: Request) -> Response:
    """Validate a resource of the given type; a resource of another type is an error in the outcome."""
    return await _run(request, resource_type)


@metadata_router.get("/fhir/metadata")
async def metadata(request: Request) -> JSONResponse:
    """The CapabilityStatement of this FHIR endpoint: `$validate` on every resource type."""
    from fhir_module.validation.capability import capability_statement

    state = request.app.state
    base = (state.settings.public_base_url or str(request.base_url)).rstrip("/") + "/fhir"
    dates = [str(plan.get("date")) for plan in state.engine.kb.plan_definitions if plan.get("date")]
    statement = capability_statement(base_url=base, software_version=request.app.version,
                                     date=max(dates, default="2026-01-01"), auth_enabled=state.settings.auth_enabled)
    return JSONResponse(statement, media_type=FHIR_JSON)
