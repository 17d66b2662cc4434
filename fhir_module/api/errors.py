"""Every error the service answers is an OperationOutcome, never a stack trace.

Routes raise `ApiError`; the handlers installed by `install_error_handlers` turn it, Starlette's
HTTP errors (404 unknown path, 405), FastAPI's parameter validation errors (422) and anything
unexpected (500, logged with an error id) into `application/fhir+json` OperationOutcome bodies.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Iterable, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("fhir_module.api")

FHIR_JSON = "application/fhir+json"

# HTTP status -> OperationOutcome issue code (http://hl7.org/fhir/issue-type), used when the
# raiser does not name one.
_DEFAULT_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    412: "incomplete",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    500: "exception",
    502: "transient",
    503: "transient",
}


def operation_outcome(
    diagnostics: str,
    *,
    code: str = "processing",
    severity: str = "error",
    expression: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A one-issue OperationOutcome."""
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = list(expression)
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_response(
    status: int, outcome: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(outcome, status_code=status, media_type=FHIR_JSON, headers=headers)


class ApiError(Exception):
    """An error answered with `status` and an OperationOutcome of one or more issues."""

    def __init__(
        self,
        status: int,
        diagnostics: str,
        *,
        code: str | None = None,
        expression: Sequence[str] | None = None,
        headers: dict[str, str] | None = None,
        issues: Iterable[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.diagnostics = diagnostics
        self.headers = headers
        code = code or _DEFAULT_CODES.get(status, "processing")
        self.issues = list(issues) if issues else operation_outcome(
            diagnostics, code=code, expression=expression
        )["issue"]

    def response(self) -> JSONResponse:
        return outcome_response(
            self.status, {"resourceType": "OperationOutcome", "issue": self.issues}, self.headers
        )


def _location(loc: Sequence[Any]) -> str:
    """('body', 'feedback', 0, 'card') -> 'feedback[0].card'."""
    text = ""
    for part in loc:
        if part in ("body",) and not text:
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "$"


def validation_issues(errors: Iterable[dict[str, Any]], prefix: str = "") -> list[dict[str, Any]]:
    """Pydantic errors -> OperationOutcome issues with an `expression` per error location."""
    issues = []
    for error in errors:
        where = _location(error.get("loc", ()))
        if prefix:
            where = prefix if where == "$" else f"{prefix}.{where}"
        code = "required" if error.get("type") == "missing" else "structure"
        issues.append(
            {
                "severity": "error",
                "code": code,
                "diagnostics": f"{where}: {error.get('msg', 'invalid value')}",
                "expression": [where],
            }
        )
    return issues or [{"severity": "error", "code": "invalid", "diagnostics": "invalid request"}]


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else "request failed"
    if status == 404:
        detail = "no such endpoint"
    elif status == 405:
        detail = "method not allowed on this endpoint"
    return outcome_response(
        status,
        operation_outcome(detail, code=_DEFAULT_CODES.get(status, "processing")),
        dict(exc.headers) if exc.headers else None,
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    issues = validation_issues(exc.errors())
    return outcome_response(422, {"resourceType": "OperationOutcome", "issue": issues})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Log an id the operator can match with the client's report; the request itself (which may
    # carry tokens and patient data) is not logged.
    error_id = uuid.uuid4().hex
    log.error(
        "unexpected error %s on %s %s: %s",
        error_id,
        request.method,
        request.url.path,
        type(exc).__name__,
        exc_info=exc,
    )
    return outcome_response(
        500, operation_outcome(f"internal error (error id {error_id})", code="exception")
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
