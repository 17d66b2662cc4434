"""Fetching from the allowed FHIR servers: one lane per server, and URLs that stay on it.

**Lanes.** Each allowed server gets its own httpx client (its own connection pool) behind a
concurrency gate of ours: at most `concurrency` fetches are inside httpx at once, so httpx never
queues a request in its pool. A fetch cancelled while queued inside httpcore's pool can leak the
pool slot for good (encode/httpcore#1093): with one shared pool, one slow server once left the
service unable to fetch from any server (or to refresh client keys) until restart. Here a slow
server fills only its own lane: its fetches wait at our gate (bounded: at most `max_waiting`, and
never past the fetch's deadline) while the other servers' lanes and the JWKS client (a client of
its own, see app.py) go on. Each lane counts what it sees for readiness and metrics.

**URLs.** Everything fetched is `base/...` of the request's allowed server: template values are
URL-encoded (templates.py), ids put in a path must be FHIR ids, and any URL (a template's, a
Medication reference's, a `next` link's) with a dot segment (`..`, `%2e%2e`) or a backslash, or
outside the base path, is refused before the client token is sent.

**Secrets.** A FHIR server may echo the bearer token it was given in an error message; text taken
from a server's answer has the token and anything token-shaped removed before it reaches a log
line or a 412 body.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import unquote, urljoin, urlsplit

from fhir_module import strictjson

from .redaction import REDACTED, redact

log = logging.getLogger("fhir_module.api.fetch")

# A single FHIR response larger than this is refused rather than held in memory.
MAX_FHIR_RESPONSE_BYTES = 20 * 1024 * 1024
# FHIR `id`: 1-64 of [A-Za-z0-9-.]; "." and ".." are path dot segments, never ids.
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# After this many fetches in a row failed (no answer, or 5xx), a lane counts as failing.
FAILING_AFTER = 3


def is_fhir_id(value: Any) -> bool:
    """A FHIR resource id (and not a dot segment such as '.' or '..')."""
    return isinstance(value, str) and _FHIR_ID.fullmatch(value) is not None and value.strip(".") != ""


class Unavailable(Exception):
    """The data for one prefetch key cannot be had; the message says why (no secrets, no PHI)."""


@dataclass(frozen=True)
class FhirSource:
    """Where missing data may be fetched: an allowed FHIR base URL and the client's token."""

    base: str
    access_token: str | None


def normalise(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


# The allow-list's entries are the configuration's (a handful): each is normalised once.
_normalised_base = functools.lru_cache(maxsize=256)(normalise)


def allowed_source(
    fhir_server: str | None, access_token: str | None, allowed: tuple[str, ...]
) -> FhirSource | None:
    """The request's FHIR server if it is on the allow-list, else None (never fetched)."""
    if not fhir_server or not allowed:  # no allow-list: no server is, whatever it is
        return None
    wanted = normalise(fhir_server)
    for base in allowed:
        if _normalised_base(base) == wanted:
            return FhirSource(base=base.rstrip("/"), access_token=access_token)
    return None


def _plain_path(path: str) -> bool:
    """No dot segment (plain or percent-encoded) and no backslash: nothing a server or httpx
    would resolve to another path than the one checked."""
    return "\\" not in path and all(unquote(segment) not in (".", "..") for segment in path.split("/"))


def within(source: FhirSource, url: str) -> bool:
    """Whether `url` is under the source's base URL (same scheme, host, port and path prefix)."""
    base, target = urlsplit(normalise(source.base)), urlsplit(url)
    return (
        target.scheme.lower() == base.scheme
        and target.netloc.lower() == base.netloc
        and (target.path == base.path or target.path.startswith(base.path + "/"))
        and _plain_path(target.path)
    )


_REFERENCE = re.compile(r"(?:(?P<base>[a-z][a-z0-9+.\-]*://.+)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[^/]+)(?:/_history/[^/]+)?")


def read_path(source: FhirSource, reference: str, resource_type: str) -> str | None:
    """`Type/id` to read for a literal reference to a `resource_type` on this source, or None for a
    reference that is not one (another type, not a FHIR id, another server, a query)."""
    match = _REFERENCE.fullmatch(reference.strip())
    if match is None or match["type"] != resource_type or not is_fhir_id(match["id"]):
        return None
    if match["base"] is not None and normalise(match["base"]) != normalise(source.base):
        return None
    return f"{resource_type}/{match['id']}"


def scrub(text: str, source: FhirSource) -> str:
    """Text from a FHIR server's answer without the client's token (servers echo it) or any
    token-shaped secret."""
    if source.access_token:
        text = text.replace(source.access_token, REDACTED)
    return redact(text)


def is_outcome(value: Any) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


def outcome_text(outcome: Mapping[str, Any]) -> str:
    """The diagnostics of an OperationOutcome in one line (unscrubbed: callers scrub)."""
    issues = outcome.get("issue")
    texts = []
    for issue in issues if isinstance(issues, list) else []:
        if isinstance(issue, dict):
            details = issue.get("details")
            text = details.get("text") if isinstance(details, dict) else None
            texts.append(str(issue.get("diagnostics") or text or issue.get("code")))
    return "; ".join(texts)[:300] or "no details"


def next_link(bundle: Mapping[str, Any]) -> str | None:
    if bundle.get("resourceType") != "Bundle":
        return None
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


# -- lanes ------------------------------------------------------------------------------------------


class ServerLane:
    """All fetches from one FHIR server: its own httpx client behind a concurrency gate."""

    def __init__(self, base: str, *, concurrency: int, max_waiting: int, timeout: float) -> None:
        self.base = base
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self._gate = asyncio.Semaphore(concurrency)
        # httpx is loaded by the first lane: a service with no FHIR server to fetch from never
        # needs it (~0.1 s of its start, with what httpx loads).
        import httpx

        # The pool has room for every fetch the gate lets through: httpx never queues one.
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            follow_redirects=False,  # a redirect could lead the bearer token off the allowed server
            trust_env=False,
        )
        self.waiting = 0
        self._started: dict[object, float] = {}  # in-flight fetch -> when it got through the gate
        self.counts: Counter[str] = Counter()  # ok, failed, timeout, busy
        self.consecutive_failures = 0
        self.last_ok: float | None = None
        self.last_failure: float | None = None
        self.last_problem: str | None = None
        self.seconds = 0.0  # total time of answered fetches, for metrics

    @property
    def in_flight(self) -> int:
        return len(self._started)

    async def get(self, url: str, headers: Mapping[str, str], timeout: float) -> tuple[int, bytes]:
        """(status, body) of GET `url`, within `timeout` seconds including the wait for a slot."""
        if self.waiting >= self.max_waiting and self._gate.locked():
            self._failed("busy", f"{self.waiting} fetches already wait for this server")
            raise Unavailable(f"the FHIR server is busy: {self.waiting} fetches of this service already "
                              "wait for it")
        import httpx  # loaded already, by __init__

        began = time.monotonic()
        token = object()  # this fetch, in the in-flight table
        got_slot = False
        try:
            async with asyncio.timeout(timeout):
                self.waiting += 1
                try:
                    await self._gate.acquire()
                finally:
                    self.waiting -= 1
                got_slot = True
                self._started[token] = time.monotonic()
                status, body = await self._fetch(url, headers, timeout)
        except TimeoutError:
            if got_slot:
                self._failed("timeout", "no answer in time")
                raise Unavailable("the FHIR server did not answer in time") from None
            self._failed("busy", "no free slot in time")
            raise Unavailable(f"the FHIR server did not answer in time (all {self.concurrency} connections "
                              "to it were busy)") from None
        except httpx.TimeoutException:
            self._failed("timeout", "no answer in time")
            raise Unavailable("the FHIR server did not answer in time") from None
        except httpx.HTTPError as exc:
            self._failed("failed", type(exc).__name__)
            raise Unavailable(f"the FHIR server could not be reached ({type(exc).__name__})") from None
        finally:
            if got_slot:
                self._started.pop(token, None)
                self._gate.release()
        self.seconds += time.monotonic() - began
        if status >= 500:
            self._failed("failed", f"HTTP {status}")
        else:
            self.counts["ok"] += 1
            self.consecutive_failures = 0
            self.last_ok = time.time()
        return status, body

    async def _fetch(self, url: str, headers: Mapping[str, str], timeout: float) -> tuple[int, bytes]:
        # httpx's timeout bounds each network step; the caller's asyncio timeout bounds the whole
        # answer (a server dripping bytes slowly cannot hold the request open).
        async with self._client.stream("GET", url, headers=dict(headers), timeout=timeout) as response:
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_FHIR_RESPONSE_BYTES:
                    raise Unavailable("the FHIR server's answer is too large")
                chunks.append(chunk)
            return response.status_code, b"".join(chunks)

    def _failed(self, kind: str, problem: str) -> None:
        self.counts[kind] += 1
        if kind == "busy":  # a full lane says nothing about the server's health
            return
        self.consecutive_failures += 1
        self.last_failure = time.time()
        self.last_problem = problem

    def state(self, timeout: float) -> dict[str, Any]:
        """What readiness reports: `ok`, `busy` (slots full, fetches waiting), `failing` (the last
        fetches got no usable answer) or `stuck` (a slot held far past any deadline: our fault)."""
        now = time.monotonic()
        oldest = max((now - began for began in self._started.values()), default=0.0)
        if oldest > 2 * timeout + 5:
            status = "stuck"
        elif self.consecutive_failures >= FAILING_AFTER:
            status = "failing"
        elif self.waiting and self._gate.locked():
            status = "busy"
        else:
            status = "ok"
        report: dict[str, Any] = {
            "status": status, "inFlight": self.in_flight, "waiting": self.waiting,
            "concurrency": self.concurrency, "consecutiveFailures": self.consecutive_failures,
        }
        if self.last_problem and self.consecutive_failures:
            report["lastProblem"] = self.last_problem
        return report

    async def aclose(self) -> None:
        await self._client.aclose()


class FhirServers:
    """The lanes of the allowed FHIR servers (built once per app, closed at shutdown)."""

    def __init__(self, allowed: tuple[str, ...], *, timeout: float, concurrency: int = 20,
                 max_waiting: int | None = None) -> None:
        self.timeout = timeout
        self._lanes = {
            normalise(base): ServerLane(base.rstrip("/"), concurrency=concurrency,
                                        max_waiting=max_waiting if max_waiting is not None else 5 * concurrency,
                                        timeout=timeout)
            for base in allowed
        }

    def lane(self, source: FhirSource) -> ServerLane:
        return self._lanes[normalise(source.base)]

    def lanes(self) -> list[ServerLane]:
        return list(self._lanes.values())

    def states(self) -> dict[str, dict[str, Any]]:
        return {lane.base: lane.state(self.timeout) for lane in self._lanes.values()}

    async def aclose(self) -> None:
        await asyncio.gather(*(lane.aclose() for lane in self._lanes.values()))


# -- one request's fetches ------------------------------------------------------------------------


class FhirFetcher:
    """Reads and searches one FHIR server for one hook request, through that server's lane.

    All fetches of the request share one deadline (`budget` seconds), besides each fetch's own
    `timeout`: paging, Medication reads and prefetch together cannot hold a request open longer.
    """

    def __init__(self, lane: ServerLane, source: FhirSource, timeout: float, max_pages: int,
                 budget: float | None = None) -> None:
        self._lane = lane
        self._source = source
        self._timeout = timeout
        self._max_pages = max_pages
        self._deadline = time.monotonic() + (budget if budget is not None else 3 * timeout)

    @property
    def source(self) -> FhirSource:
        return self._source

    async def get_json(self, url: str) -> tuple[int, Any]:
        if not within(self._source, url):
            raise Unavailable("a URL outside the allowed FHIR server's base path was not fetched")
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise Unavailable("the FHIR server did not answer in time (this request's fetches took too long)")
        headers = {"Accept": "application/fhir+json, application/json"}
        if self._source.access_token:
            headers["Authorization"] = f"Bearer {self._source.access_token}"
        status, raw = await self._lane.get(url, headers, min(self._timeout, remaining))
        try:  # strict: a NaN or 1e400 dose from the server must not reach the engine as a number
            return status, strictjson.loads(raw) if raw else None
        except strictjson.JsonError as exc:
            if status == 200:
                raise Unavailable(f"the FHIR server's answer is not valid JSON: {exc.message}") from None
            return status, None

    def problem(self, text: str) -> Unavailable:
        """An Unavailable whose message quotes the server, scrubbed of secrets."""
        return Unavailable(scrub(text, self._source))

    async def fetch(self, relative: str) -> dict[str, Any] | None:
        """GET `relative` from the server; None for a read that finds nothing."""
        status, body = await self.get_json(f"{self._source.base}/{relative.lstrip('/')}")
        is_read = "?" not in relative
        if status in (404, 410) and is_read:
            return None
        if status != 200:
            detail = f": {outcome_text(body)}" if is_outcome(body) else ""
            raise self.problem(f"the FHIR server answered HTTP {status}{detail}")
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            raise Unavailable("the FHIR server's answer is not a FHIR resource")
        if is_outcome(body):
            raise self.problem(f"the FHIR server answered an OperationOutcome: {outcome_text(body)}")
        expected = relative.split("?", 1)[0].strip("/").split("/", 1)[0] if is_read else "Bundle"
        if body["resourceType"] != expected:
            raise self.problem(f"the FHIR server answered a {body['resourceType'][:64]}, not a {expected}")
        return await self.complete_pages(body)

    async def complete_pages(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """Follow `link[next]` and merge every page's entries into one searchset Bundle."""
        next_url = next_link(bundle)
        if next_url is None:
            return bundle
        entries = list(bundle.get("entry") or [])
        seen = {next_url}
        pages = 1
        while next_url is not None:
            next_url = urljoin(self._source.base + "/", next_url)
            if not within(self._source, next_url):
                raise Unavailable("a page of the search result lies outside the allowed FHIR server")
            pages += 1
            if pages > self._max_pages:
                raise Unavailable(f"the search result has more than {self._max_pages} pages")
            status, page = await self.get_json(next_url)
            if status != 200 or not isinstance(page, dict) or page.get("resourceType") != "Bundle":
                raise Unavailable(f"a page of the search result could not be read (HTTP {status})")
            entries.extend(page.get("entry") or [])
            next_url = next_link(page)
            if next_url in seen:
                raise Unavailable("the search result's pages loop")
            if next_url is not None:
                seen.add(next_url)
        merged = {k: v for k, v in bundle.items() if k not in ("link", "entry", "total")}
        merged["total"] = len(entries)
        if entries:
            merged["entry"] = entries
        return merged
