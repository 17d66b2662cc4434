"""Complete a request's prefetch before the engine sees it.

What the client sent is used as is. A key that is absent, null, or holds an OperationOutcome (the
client's own fetch failed) is fetched from the request's `fhirServer` with its `fhirAuthorization`
token, but only when that server is in the configured allow-list. A searchset Bundle whose
`link[next]` points further is completed page by page (within the same server, up to a limit), so
the engine never judges half a medication list.

Outcomes per key:

- fetched, or sent by the client: the resource / Bundle;
- a read that answers 404/410, or an explicit `null` from the client with no server to ask: None
  (CDS Hooks: null means the client has no data for the template);
- anything else that cannot be had (absent with no usable server, fetch error, timeout, a page we
  may not follow): the request fails with 412 and one OperationOutcome issue per key.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from typing import Any, Mapping

from .errors import ApiError
from .fetch import FhirFetcher, Unavailable, is_outcome, next_link, outcome_text, read_path
from .templates import TemplateError, render_template

log = logging.getLogger("fhir_module.api.prefetch")


async def complete_prefetch(
    *,
    templates: Mapping[str, str],
    sent: Mapping[str, Any] | None,
    missing: list[str],
    context: Mapping[str, Any],
    fhir_server: str | None,
    fetcher: FhirFetcher | None,
    today: _dt.date | None = None,
    medications: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every template key mapped to its data; raises ApiError 412 (or 400 for missing context).
    `fetcher` reads the request's allowed server (None: nothing may be fetched); `medications` are
    Medications already read for this request (`read_order_medications`)."""
    sent = dict(sent or {})
    prefetch: dict[str, Any] = {key: sent.get(key) for key in templates}
    problems: dict[str, str] = {}
    if fhir_server is None:
        no_source = "the request names no fhirServer"
    else:
        no_source = "the request's fhirServer is not one this service is allowed to query"

    # Render every template to fetch first, so a request missing context fails (400) before any
    # fetch goes out.
    to_fetch: dict[str, str] = {}
    for key in (k for k in missing if k in templates):
        value = sent.get(key)
        if fetcher is None:
            if key in sent and value is None:
                continue  # the client says it has no data for this template
            if is_outcome(value):
                problems[key] = f"the client could not fetch it ({outcome_text(value)}) and {no_source}"
            else:
                problems[key] = f"not in the request's prefetch, and {no_source}"
            continue
        try:
            to_fetch[key] = render_template(templates[key], context, today)
        except TemplateError as exc:
            if exc.token.startswith("context."):
                raise ApiError(400, f"{exc} (needed for prefetch {key!r})", code="required",
                               expression=[exc.token]) from None
            problems[key] = str(exc)

    async def fill(key: str, relative: str) -> None:
        assert fetcher is not None
        try:
            prefetch[key] = await fetcher.fetch(relative)
        except Unavailable as exc:
            log.warning("prefetch %r could not be fetched: %s", key, exc)
            problems[key] = str(exc)

    async def follow(key: str) -> None:
        if fetcher is None:
            problems[key] = f"the client sent only the first page of a search result, and {no_source}"
            return
        try:
            prefetch[key] = await fetcher.complete_pages(prefetch[key])
        except Unavailable as exc:
            problems[key] = str(exc)

    paged = [
        key for key in templates
        if key not in missing and isinstance(prefetch.get(key), dict) and next_link(prefetch[key])
    ]
    await asyncio.gather(*(fill(k, rel) for k, rel in to_fetch.items()), *(follow(k) for k in paged))
    if problems:
        issues = [
            {
                "severity": "error",
                "code": "incomplete",
                "diagnostics": f"prefetch {key!r} cannot be had: {reason}",
                "expression": [f"prefetch.{key}"],
            }
            for key, reason in sorted(problems.items())
        ]
        raise ApiError(412, issues[0]["diagnostics"], issues=issues)
    if medications:
        prefetch[REFERENCED_MEDICATIONS] = medications
    if fetcher is not None:
        more = await _referenced_medications(fetcher, prefetch, context)
        if more:
            entries = [*(medications or {}).get("entry", []), *more["entry"]]
            prefetch[REFERENCED_MEDICATIONS] = {**more, "entry": entries}
    return prefetch


async def read_order_medications(
    *, sent: Mapping[str, Any] | None, context: Mapping[str, Any], fetcher: FhirFetcher
) -> dict[str, Any] | None:
    """The Medications that the draft orders (or the sent prefetch) name but the request does not
    hold, read from the allowed server first: an order's drug decides which data its rules need
    (an order for a drug no rule knows needs none)."""
    return await _referenced_medications(fetcher, sent or {}, context)


# Not every server answers `_include`, and a draft may name a Medication only the chart holds:
# Medications that orders reference but the request lacks are read one by one (a bounded few).
REFERENCED_MEDICATIONS = "referencedMedications"
MAX_MEDICATION_READS = 20


def _resources_in(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") == "Bundle":
        return [r for e in value.get("entry") or [] if isinstance(e, dict) for r in _resources_in(e.get("resource"))]
    return [value]


async def _referenced_medications(fetcher: FhirFetcher, prefetch: Mapping[str, Any],
                                  context: Mapping[str, Any]) -> dict[str, Any] | None:
    resources = [r for value in [*prefetch.values(), context.get("draftOrders")] for r in _resources_in(value)]
    present = {f"Medication/{r.get('id')}" for r in resources if r.get("resourceType") == "Medication"}
    wanted: set[str] = set()
    for resource in resources:
        reference = (resource.get("medicationReference") or {}).get("reference") if isinstance(
            resource.get("medicationReference"), dict) else None
        if isinstance(reference, str) and not reference.startswith(("#", "urn:")):
            # Only a literal reference to a Medication with a FHIR id on this server is read:
            # "Medication/x?_count=100000" or "Medication/.." never becomes a URL.
            relative = read_path(fetcher.source, reference, "Medication")
            if relative is not None and relative not in present:
                wanted.add(relative)
    if not wanted:
        return None

    async def read(relative: str) -> dict[str, Any] | None:
        try:
            return await fetcher.fetch(relative)
        except Unavailable as exc:
            log.warning("referenced %s could not be read: %s", relative, exc)
            return None

    found = await asyncio.gather(*(read(r) for r in sorted(wanted)[:MAX_MEDICATION_READS]))
    entries = [{"resource": medication} for medication in found if medication]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries} if entries else None
