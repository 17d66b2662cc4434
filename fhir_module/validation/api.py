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

from fhir_module.api.body import read_body
from fhir_module.api.errors import ApiError
from fhir_module.validation.runner import ClientGone, Refused, ValidationJob, ValidationRunner, shared_runner

router = APIRouter(tags=["validation"])

FHIR_JSON = "application/fhir+json"

def runner_of(request: Request) -> ValidationRunner:
    """The app's runner (create_app sets one from the settings), else the default one."""
    return getattr(request.app.state, "validation_runner", None) or shared_runner()


async def _run(request: Request, resource_type: str | None) -> Response:
    try:
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


@router.post("/fhir/$validate")
async def validate_any(request: Request) -> Response:
    """Validate a resource (or a Parameters wrapping one) against the base spec and its profiles."""
    return await _run(request, None)


@router.post("/fhir/{resource_type}/$validate")
async def validate_typed(resource_type: str, request: Request) -> Response:
    """Validate a resource of the given type; a resource of another type is an error in the outcome."""
    return await _run(request, resource_type)
