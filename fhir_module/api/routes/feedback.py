"""`POST /cds-services/{id}/feedback`: store what the user did with the cards.

Answered 200 only after the store has committed every item, so a client that got 200 need not
resend; any failure before that answers an error and stores nothing (one transaction).
"""

from __future__ import annotations

import datetime as _dt
import logging
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from fhir_module.feedback import FeedbackEntry

from ..auth import require_client
from ..body import read_json_object, require_json_content_type
from ..errors import ApiError, validation_issues
from ..models import FeedbackItem, FeedbackRequest, FeedbackResponse
from ..openapi import ERROR_RESPONSES, json_request_body
from .services import ServiceId, known_service

log = logging.getLogger("fhir_module.api.feedback")

router = APIRouter(tags=["feedback"])


def to_entry(item: FeedbackItem, raw: dict[str, Any]) -> FeedbackEntry:
    reason = item.overrideReason.reason if item.overrideReason else None
    return FeedbackEntry(
        card=item.card,
        outcome=item.outcome,
        outcome_timestamp=item.outcomeTimestamp,
        accepted_suggestions=tuple(s.id for s in item.acceptedSuggestions or ()),
        override_system=reason.system if reason else None,
        override_code=reason.code if reason else None,
        override_display=reason.display if reason else None,
        user_comment=item.overrideReason.userComment if item.overrideReason else None,
        raw=raw,
    )


@router.post(
    "/cds-services/{service_id}/feedback",
    response_model=FeedbackResponse,
    responses=ERROR_RESPONSES(400, 401, 404, 413, 415, 422),
    summary="Report accepted suggestions and overridden cards",
    openapi_extra=json_request_body(FeedbackRequest),
    dependencies=[Depends(require_client)],
)
async def feedback(request: Request, service_id: str = ServiceId) -> JSONResponse:
    known_service(request, service_id)
    require_json_content_type(request)
    body = await read_json_object(request)
    try:
        parsed = FeedbackRequest.model_validate(body)
    except ValidationError as exc:
        issues = validation_issues(exc.errors(include_url=False))
        raise ApiError(400, issues[0]["diagnostics"], issues=issues) from None
    entries = [to_entry(item, raw) for item, raw in zip(parsed.feedback, body["feedback"], strict=True)]
    received = _dt.datetime.now(_dt.timezone.utc)
    try:
        stored = await run_in_threadpool(request.app.state.store.add, service_id, entries, received)
    except Exception as exc:  # the database is down or refused the rows: nothing was stored
        log.error("feedback for %s could not be stored: %s", service_id, type(exc).__name__)
        raise ApiError(503, "feedback could not be stored; nothing was kept, send it again later",
                       code="transient") from None
    return JSONResponse({"stored": stored})
