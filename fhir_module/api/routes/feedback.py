"""`POST /cds-services/{id}/feedback`: store what the user did with the cards.

Only what this service issued is taken: a card uuid it signed (api/cardids.py), a suggestion it
put on that card, an override reason that card offered; anything else is a 400 naming the item.
Answered 200 only after the store has committed every item, so a client that got 200 need not
resend; any failure before that answers an error and stores nothing (one transaction). Input that
can never be stored is a 400, never the 503 "send it again" that only a database failure earns.
An item is stored once per card and outcome: a resend (its 200 lost) is acknowledged as already
stored, never stored twice.
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
from ..cardids import CardIds
from ..errors import ApiError, validation_issues
from ..logs import note_request
from ..models import FeedbackItem, FeedbackRequest, FeedbackResponse
from ..openapi import ERROR_RESPONSES, json_request_body
from .services import ServiceId, known_service

log = logging.getLogger("fhir_module.api.feedback")

router = APIRouter(tags=["feedback"])


def to_entry(item: FeedbackItem, raw: dict[str, Any], rule: str | None) -> FeedbackEntry:
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
        rule=rule,
    )


def _issue(where: str, message: str) -> dict[str, Any]:
    return {"severity": "error", "code": "invalid", "diagnostics": f"{where}: {message}", "expression": [where]}


def _nul_characters(value: Any, where: str) -> list[str]:
    """Where a string (or a member name) holds U+0000: PostgreSQL stores no NUL in text or JSONB,
    so such an item once got 503 "send it again later" on every resend."""
    if isinstance(value, str):
        return [where] if "\x00" in value else []
    if isinstance(value, list):
        return [w for index, item in enumerate(value) for w in _nul_characters(item, f"{where}[{index}]")]
    if isinstance(value, dict):
        found = []
        for name, item in value.items():
            member = f"{where}.{name.replace(chr(0), '?')}"
            found += ([member] if "\x00" in name else []) + _nul_characters(item, member)
        return found
    return []


def storable(items: list[Any]) -> None:
    """400 for input no database can keep (U+0000 anywhere in an item), whichever database is used."""
    issues = [_issue(where, "holds a NUL character (U+0000), which cannot be stored")
              for where in _nul_characters(items, "feedback")]
    if issues:
        raise ApiError(400, issues[0]["diagnostics"], issues=issues)


def issued_items(request: Request, service_id: str, items: list[FeedbackItem]) -> list[str | None]:
    """Each item's rule (card topic), once every item is shown to name what this service issued;
    else a 400 listing every item that does not."""
    card_ids: CardIds = request.app.state.card_ids
    reasons = {(r["system"], r["code"]) for r in request.app.state.engine.override_reasons(service_id)}
    rules, issues = [], []
    for index, item in enumerate(items):
        where = f"feedback[{index}]"
        card = card_ids.card(service_id, item.card)
        if card is None:
            issues.append(_issue(f"{where}.card", f"card {item.card[:80]!r} was not issued by this service"))
            rules.append(None)
            continue
        rules.append(card.topic)
        for number, suggestion in enumerate(item.acceptedSuggestions or ()):
            if not card_ids.suggestion_issued(service_id, item.card, suggestion.id):
                issues.append(_issue(f"{where}.acceptedSuggestions[{number}].id",
                                     f"suggestion {suggestion.id[:80]!r} is not one of this card's"))
        reason = item.overrideReason.reason if item.overrideReason else None
        if reason is not None and (not card.overridable or (reason.system, reason.code) not in reasons):
            issues.append(_issue(f"{where}.overrideReason.reason",
                                 f"{reason.system}|{reason.code} is not an override reason this card offered"))
    if issues:
        raise ApiError(400, issues[0]["diagnostics"], issues=issues)
    return rules


@router.post(
    "/cds-services/{service_id}/feedback",
    response_model=FeedbackResponse,
    responses=ERROR_RESPONSES(400, 401, 403, 404, 408, 413, 415, 422, 503),
    summary="Report accepted suggestions and overridden cards",
    description="Takes only cards this service issued (their uuids are signed), the suggestions it put on "
                "them and the override reasons they offered (400 otherwise). Idempotent per card and outcome: "
                "a resent item is acknowledged as `alreadyStored`. 200 only once every item is committed; "
                "503 (nothing stored) when the database fails.",
    openapi_extra=json_request_body(FeedbackRequest),
    dependencies=[Depends(require_client)],
)
async def feedback(request: Request, service_id: str = ServiceId) -> JSONResponse:
    known_service(request, service_id)
    note_request(service=service_id)
    require_json_content_type(request)
    body = await read_json_object(request)
    try:
        parsed = FeedbackRequest.model_validate(body)
    except ValidationError as exc:
        issues = validation_issues(exc.errors(include_url=False))
        raise ApiError(400, issues[0]["diagnostics"], issues=issues) from None
    storable(body["feedback"])
    rules = issued_items(request, service_id, parsed.feedback)
    entries = [to_entry(item, raw, rule) for item, raw, rule in zip(parsed.feedback, body["feedback"], rules, strict=True)]
    received = _dt.datetime.now(_dt.timezone.utc)
    try:
        stored, already = await run_in_threadpool(request.app.state.store.add, service_id, entries, received)
    except Exception as exc:  # the database is down or refused the rows: nothing was stored
        log.error("feedback for %s could not be stored: %s", service_id, type(exc).__name__)
        raise ApiError(503, "feedback could not be stored; nothing was kept, send it again later",
                       code="transient") from None
    metrics = request.app.state.metrics
    for entry in entries:
        metrics.inc("fhir_module_feedback_items_total", {"service": service_id, "outcome": entry.outcome})
    if already:
        metrics.inc("fhir_module_feedback_resent_items_total", {"service": service_id}, already)
    return JSONResponse({"stored": stored, "alreadyStored": already})
