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
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urljoin, urlsplit

import httpx

from fhir_module import strictjson

from .errors import ApiError
from .templates import TemplateError, render_template

log = logging.getLogger("fhir_module.api.prefetch")

# A single FHIR response larger than this is refused rather than held in memory.
MAX_FHIR_RESPONSE_BYTES = 20 * 1024 * 1024


class Unavailable(Exception):
    """The data for one prefetch key cannot be had; the message says why (no secrets, no PHI)."""


@dataclass(frozen=True)
class FhirSource:
    """Where missing data may be fetched: an allowed FHIR base URL and the client's token."""

    base: str
    access_token: str | None


def _normalise(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def allowed_source(
    fhir_server: str | None, access_token: str | None, allowed: tuple[str, ...]
) -> FhirSource | None:
    """The request's FHIR server if it is on the allow-list, else None (never fetched)."""
    if not fhir_server:
        return None
    wanted = _normalise(fhir_server)
    for base in allowed:
        if _normalise(base) == wanted:
            return FhirSource(base=base.rstrip("/"), access_token=access_token)
    return None


def _within(source: FhirSource, url: str) -> bool:
    """A paging link may only lead back into the same server base (no token leaks elsewhere)."""
    base, target = urlsplit(_normalise(source.base)), urlsplit(url)
    return (
        target.scheme.lower() == base.scheme
        and target.netloc.lower() == base.netloc
        and (target.path == base.path or target.path.startswith(base.path + "/"))
    )


def _is_outcome(value: Any) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    if bundle.get("resourceType") != "Bundle":
        return None
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


def _outcome_text(outcome: Mapping[str, Any]) -> str:
    issues = outcome.get("issue")
    texts = []
    for issue in issues if isinstance(issues, list) else []:
        if isinstance(issue, dict):
            details = issue.get("details")
            text = details.get("text") if isinstance(details, dict) else None
            texts.append(str(issue.get("diagnostics") or text or issue.get("code")))
    return "; ".join(texts)[:300] or "no details"


class FhirFetcher:
    """Reads and searches one FHIR server for one request through the shared httpx client."""

    def __init__(self, client: httpx.AsyncClient, source: FhirSource, timeout: float, max_pages: int) -> None:
        self._client = client
        self._source = source
        self._timeout = timeout
        self._max_pages = max_pages

    @property
    def source(self) -> FhirSource:
        return self._source

    async def get_json(self, url: str) -> tuple[int, Any]:
        headers = {"Accept": "application/fhir+json, application/json"}
        if self._source.access_token:
            headers["Authorization"] = f"Bearer {self._source.access_token}"
        try:
            # httpx's timeout bounds each network step; asyncio's bounds the whole answer (a server
            # dripping bytes slowly cannot hold the request open).
            async with asyncio.timeout(self._timeout):
                async with self._client.stream("GET", url, headers=headers, timeout=self._timeout) as response:
                    chunks, size = [], 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > MAX_FHIR_RESPONSE_BYTES:
                            raise Unavailable("the FHIR server's answer is too large")
                        chunks.append(chunk)
                    status = response.status_code
        except (httpx.TimeoutException, TimeoutError):
            raise Unavailable("the FHIR server did not answer in time") from None
        except httpx.HTTPError as exc:
            raise Unavailable(f"the FHIR server could not be reached ({type(exc).__name__})") from None
        try:  # strict: a NaN or 1e400 dose from the server must not reach the engine as a number
            return status, strictjson.loads(b"".join(chunks)) if chunks else None
        except strictjson.JsonError as exc:
            if status == 200:
                raise Unavailable(f"the FHIR server's answer is not valid JSON: {exc.message}") from None
            return status, None

    async def fetch(self, relative: str) -> dict[str, Any] | None:
        """GET `relative` from the server; None for a read that finds nothing."""
        url = f"{self._source.base}/{relative.lstrip('/')}"
        status, body = await self.get_json(url)
        is_read = "?" not in relative
        if status in (404, 410) and is_read:
            return None
        if status != 200:
            detail = f": {_outcome_text(body)}" if _is_outcome(body) else ""
            raise Unavailable(f"the FHIR server answered HTTP {status}{detail}")
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            raise Unavailable("the FHIR server's answer is not a FHIR resource")
        if _is_outcome(body):
            raise Unavailable(f"the FHIR server answered an OperationOutcome: {_outcome_text(body)}")
        expected = relative.split("?", 1)[0].strip("/").split("/", 1)[0] if is_read else "Bundle"
        if body["resourceType"] != expected:
            raise Unavailable(f"the FHIR server answered a {body['resourceType']}, not a {expected}")
        return await self.complete_pages(body)

    async def complete_pages(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """Follow `link[next]` and merge every page's entries into one searchset Bundle."""
        next_url = _next_link(bundle)
        if next_url is None:
            return bundle
        entries = list(bundle.get("entry") or [])
        seen = {next_url}
        pages = 1
        while next_url is not None:
            next_url = urljoin(self._source.base + "/", next_url)
            if not _within(self._source, next_url):
                raise Unavailable("a page of the search result lies outside the allowed FHIR server")
            pages += 1
            if pages > self._max_pages:
                raise Unavailable(f"the search result has more than {self._max_pages} pages")
            status, page = await self.get_json(next_url)
            if status != 200 or not isinstance(page, dict) or page.get("resourceType") != "Bundle":
                raise Unavailable(f"a page of the search result could not be read (HTTP {status})")
            entries.extend(page.get("entry") or [])
            next_url = _next_link(page)
            if next_url in seen:
                raise Unavailable("the search result's pages loop")
            if next_url is not None:
                seen.add(next_url)
        merged = {k: v for k, v in bundle.items() if k not in ("link", "entry", "total")}
        merged["total"] = len(entries)
        if entries:
            merged["entry"] = entries
        return merged


async def complete_prefetch(
    *,
    templates: Mapping[str, str],
    sent: Mapping[str, Any] | None,
    missing: list[str],
    context: Mapping[str, Any],
    fhir_server: str | None,
    source: FhirSource | None,
    client: httpx.AsyncClient,
    timeout: float,
    max_pages: int,
    today: _dt.date | None = None,
    medications: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every template key mapped to its data; raises ApiError 412 (or 400 for missing context).
    `medications` are Medications already read for this request (`read_order_medications`)."""
    sent = dict(sent or {})
    prefetch: dict[str, Any] = {key: sent.get(key) for key in templates}
    fetcher = FhirFetcher(client, source, timeout, max_pages) if source else None
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
            if _is_outcome(value):
                problems[key] = f"the client could not fetch it ({_outcome_text(value)}) and {no_source}"
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
        if key not in missing and isinstance(prefetch.get(key), dict) and _next_link(prefetch[key])
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
    *,
    sent: Mapping[str, Any] | None,
    context: Mapping[str, Any],
    source: FhirSource,
    client: httpx.AsyncClient,
    timeout: float,
    max_pages: int,
) -> dict[str, Any] | None:
    """The Medications that the draft orders (or the sent prefetch) name but the request does not
    hold, read from the allowed server first: an order's drug decides which data its rules need
    (an order for a drug no rule knows needs none)."""
    return await _referenced_medications(FhirFetcher(client, source, timeout, max_pages), sent or {}, context)


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
            relative = "/".join(reference.split("/_history/")[0].rstrip("/").split("/")[-2:])
            if relative.startswith("Medication/") and relative not in present:
                if "://" not in reference or _within(fetcher.source, reference):
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
