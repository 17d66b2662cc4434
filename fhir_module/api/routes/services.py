"""`POST /cds-services/{id}`: check the request, complete its prefetch, let the engine decide.

The order of checks is the order of what a client can get wrong: who it is (401), what it calls
(404), how it sends (415, 400 malformed JSON, 400 wire format), whether the call fits the service
(400 wrong hook), whether the data can be had (412), and finally what the engine says (cards, or
its own 400 for context it cannot use).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from fhir_module.engine import RequestError

from ..auth import require_client
from ..body import read_json_object, require_json_content_type
from ..errors import ApiError, validation_issues
from ..logs import note_request
from ..models import CdsServiceRequest, CdsServiceResponse
from ..openapi import ERROR_RESPONSES, json_request_body
from ..routing import DirectRoute
from ..fetch import FhirFetcher, allowed_source
from ..prefetch import REFERENCED_MEDICATIONS, complete_prefetch, read_order_medications
from .monographs import localise_links

log = logging.getLogger("fhir_module.api.services")


class ClientRoute(DirectRoute):
    """The hot path of the service, called directly (routing.py), the client authenticated first."""

    first = staticmethod(require_client)


router = APIRouter(tags=["services"], route_class=ClientRoute)

ServiceId = Path(description="The service id from discovery", min_length=1, max_length=200)

# Requests up to this size are evaluated on the event loop: they take a millisecond or two, less
# than the hop to a worker thread and back costs them. Larger charts go to the thread pool so that
# other requests' FHIR fetches and health checks go on meanwhile.
INLINE_BODY_BYTES = 64 * 1024


def evaluates_inline(body_bytes: int) -> bool:
    return body_bytes <= INLINE_BODY_BYTES


def known_service(request: Request, service_id: str) -> dict[str, Any]:
    """The discovery entry of `service_id`, or 404."""
    service = request.app.state.engine.service(service_id)
    if service is None:
        raise ApiError(404, f"no CDS service with id {service_id!r}", expression=["id"])
    return service


def parse_request(body: dict[str, Any]) -> CdsServiceRequest:
    try:
        return CdsServiceRequest.model_validate(body)
    except ValidationError as exc:
        issues = validation_issues(exc.errors(include_url=False))
        raise ApiError(400, issues[0]["diagnostics"], issues=issues) from None


@router.post(
    "/cds-services/{service_id}",
    response_model=CdsServiceResponse,
    responses=ERROR_RESPONSES(400, 401, 403, 404, 408, 412, 413, 415, 422, 503),
    summary="Call a CDS service with a hook request",
    description=(
        "The request's `hook` must be the service's (400 otherwise) and its context must hold what the "
        "hook defines (400). Prefetch: only the data the rules of the checked orders read is needed; what "
        "the client sent is used as is, a key that is absent, null or an OperationOutcome is fetched from "
        "`fhirServer` with `fhirAuthorization` when that server is on the service's allow-list, a searchset "
        "with a `next` link is completed page by page on the same server. Data a rule needs that cannot be "
        "had is a 412 naming each prefetch key and why (never cards judged on part of the chart). "
        "`patientId` and ids placed in fetch URLs must be FHIR ids. The answer's card and suggestion uuids "
        "are signed: feedback on them is accepted, on any other uuid it is refused."),
    openapi_extra=json_request_body(CdsServiceRequest),
)
async def call_service(request: Request, service_id: str = ServiceId) -> Response:
    state = request.app.state
    service = known_service(request, service_id)
    require_json_content_type(request)
    body = await read_json_object(request)
    hook_request = parse_request(body)
    note_request(service=service_id, hookInstance=hook_request.hookInstance)  # on every log line of the call
    if hook_request.hook != service["hook"]:
        raise ApiError(
            400,
            f"service {service_id!r} answers the {service['hook']!r} hook, not {hook_request.hook!r}",
            code="invalid",
            expression=["hook"],
        )
    settings = state.settings
    sent = body.get("prefetch") or {}
    authorization = hook_request.fhirAuthorization
    source = allowed_source(
        hook_request.fhirServer,
        authorization.access_token if authorization else None,
        settings.allowed_fhir_servers,
    )
    # Only the data the checked orders' rules read is completed: an unrelated order (an MRI, a
    # drug no module knows) needs none, so it is answered without its prefetch and without a fetch.
    # An order whose drug is a Medication the request lacks is judged once that Medication is read.
    # One fetcher for all of the request's fetches: they share its lane and its deadline.
    fetcher = None
    if source is not None:
        fetcher = FhirFetcher(state.fhir_servers.lane(source), source, settings.fetch_timeout,
                              settings.max_prefetch_pages)
    medications = None
    if fetcher is not None:
        medications = await read_order_medications(sent=sent, context=hook_request.context, fetcher=fetcher)
    judged = {**body, "prefetch": {**sent, REFERENCED_MEDICATIONS: medications}} if medications else body
    try:
        prepared = state.engine.prepare(service_id, judged)
        applying = state.engine.kinds_that_may_apply(service_id, prepared)
    except RequestError as exc:
        raise ApiError(exc.status, exc.message, expression=exc.expression) from None
    if not applying:
        # No kind of order applies to a checked order (judged on the orders alone, and that
        # judgement did not fail): no rule can fire, no prefetch is needed, nothing is evaluated.
        return answer(request, service_id, {"cards": []})
    needed = state.engine.prefetch_keys(service_id, applying)
    missing = state.engine.missing_prefetch(service_id, sent, needed)
    if hook_request.fhirServer and source is None and missing:
        log.warning("service %s: fhirServer of the request is not on the allow-list", service_id)
    templates = service.get("prefetch") or {}
    prefetch = await complete_prefetch(
        templates={key: templates[key] for key in needed},
        sent=sent,
        missing=missing,
        context=hook_request.context,
        fhir_server=hook_request.fhirServer,
        fetcher=fetcher,
        medications=medications,
    )
    # The engine gets the request without the access token: it never needs it.
    engine_request = {k: v for k, v in body.items() if k != "fhirAuthorization"}
    engine_request["prefetch"] = prefetch
    # The chart read to judge the orders is the one to evaluate when the prefetch evaluated is
    # exactly the one sent (nothing fetched, added or left out).
    if medications or prefetch.keys() != sent.keys() or any(prefetch[k] is not sent[k] for k in prefetch):
        prepared = None
    try:
        if evaluates_inline(len(await request.body())):
            response = state.engine.evaluate(service_id, engine_request, prepared=prepared)
        else:
            response = await run_in_threadpool(state.engine.evaluate, service_id, engine_request, prepared=prepared)
    except RequestError as exc:
        raise ApiError(exc.status, exc.message, expression=exc.expression) from None
    return answer(request, service_id, response)


def answer(request: Request, service_id: str, response: dict[str, Any]) -> Response:
    """The engine's response as sent: card and suggestion uuids signed (the feedback endpoint will
    recognise them as this service's own), cards counted, links to this service's monographs."""
    state = request.app.state
    state.card_ids.sign(service_id, response)
    state.metrics.count_cards(service_id, response)
    note_request(cards=len(response.get("cards") or []))
    if response.get("cards"):
        response = localise_links(response, state.engine, state.settings.public_base_url or str(request.base_url))
    return Response(orjson.dumps(response), media_type="application/json")
