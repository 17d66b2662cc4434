"""The FastAPI application: `create_app(settings, engine)`.

The app holds its collaborators on `app.state`: `engine` (the knowledge), `settings`,
`fhir_servers` (a fetch lane per allowed FHIR server), `store` (feedback) and `authenticator` (with
its own httpx client for JWK Sets, when trusted clients are configured).
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import os
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import Depends, FastAPI

from fhir_module.config import Settings, load_settings
from fhir_module.feedback import FeedbackStore, store_from_url
from fhir_module.validation.runner import shared_runner

from .auth import Authenticator, LoopbackOnly, require_client
from .body import BodyLimits
from .cors import CORS
from .cardids import SECRET_NAME as CARD_IDS_SECRET, CardIds
from .errors import install_error_handlers
from .fetch import FhirServers
from .logs import install_json_logs
from .metrics import ENV_METRICS_DIR, Metrics, RequestMetrics
from .openapi import build_openapi
from .redaction import install_log_redaction
from .routes import discovery, docs, feedback, health, monographs, preview, services
from .routes import metrics as metrics_route

log = logging.getLogger("fhir_module.api")

# Middle-generation collections between two full ones (see the lifespan).
FULL_COLLECTION_EVERY = 1000
# Tracked objects allocated beyond those freed before a young collection runs (Python's default:
# 700). More than the largest request holds at its peak (a 5,000-resource prefetch: ~61,000 objects).
YOUNG_COLLECTION_AFTER = 100_000

# FastAPI's native OpenTelemetry (recent versions) asks the global providers on every request
# whether to instrument it, 4 us of an unrelated order-select; the service reports through its own
# /metrics and logs, and no OpenTelemetry is set up for it.
_WITHOUT_FASTAPI_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {})

DESCRIPTION = (
    "CDS Hooks 2.0 services built from FHIR knowledge artifacts. Errors answer FHIR "
    "OperationOutcome bodies (application/fhir+json)."
)


def load_engine(settings: Settings, *, allow_draft: bool = False) -> Any:
    """The engine for these settings: the configured modules and bundles, else the built-in modules,
    checked (KnowledgeCheckError when they would not run as written)."""
    from fhir_module.engine import Engine

    return Engine.from_sources(modules=settings.module_paths, bundles=settings.bundle_paths, allow_draft=allow_draft)


def create_app(
    settings: Settings | None = None,
    engine: Any = None,
    *,
    store: FeedbackStore | None = None,
) -> FastAPI:
    """Build the service. Missing arguments come from the environment (`load_settings`), the
    configured bundle or built-in knowledge, and the configured feedback database."""
    settings = settings or load_settings()
    engine = engine if engine is not None else load_engine(settings)
    store = store if store is not None else store_from_url(settings.database_url)
    # FHIR fetches go through one lane per allowed server (fetch.py); client keys have a client of
    # their own, so no FHIR server, however slow, can keep the service from checking a JWT.
    fhir_servers = FhirServers(settings.allowed_fhir_servers, timeout=settings.fetch_timeout,
                               concurrency=settings.fetch_concurrency)
    # Without trusted clients no key is ever fetched: no client, and no httpx loaded (with its TLS
    # context, ~0.1 s of the start).
    jwks_http = _jwks_client(settings.fetch_timeout) if settings.auth_enabled else None

    # $validate runs in worker processes of its own, bounded (validation/runner.py); stopped at exit.
    validation_runner = shared_runner(settings.validate_concurrency, settings.validate_timeout,
                                      settings.validate_max_resources)

    metrics = Metrics(os.environ.get(ENV_METRICS_DIR) or None)
    _collect(metrics, fhir_servers, validation_runner, engine)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # What is loaded at start (modules, knowledge, compiled expressions) lives as long as the
        # process: out of the collector's sight, a large request's garbage collections walk only
        # what requests create (74 ms of a 5,000-resource request was collection before this).
        gc.freeze()
        # Full collections only every 1,000 middle ones (Python's default: 10). After the freeze
        # the collector counts few long-lived objects, so by default a full collection ran every
        # 10 middle ones and walked all of a large request's JSON each time: 60 ms of a
        # 5,000-resource request, 4 ms now. Cycles are still found, by the younger generations
        # or the next full collection.
        # Young collections only after 100,000 net new objects (allocations minus deallocations):
        # a request's JSON, freed by reference counting once answered, is never walked. At the
        # default 700 a 5,000-resource request ran ~79 young and 7 middle collections over its own
        # tree, through memory the caches no longer held: that, not more instructions, made it
        # cost over 5 times a 1,000-resource one (callgrind: a third fewer last-level misses now).
        # Garbage in cycles waits for at most 100,000 objects, a pause of milliseconds.
        _, middle, _ = gc.get_threshold()
        gc.set_threshold(YOUNG_COLLECTION_AFTER, middle, FULL_COLLECTION_EVERY)
        # With several workers each keeps its snapshot fresh for the one that is scraped.
        flusher = asyncio.create_task(_flush_every(metrics, 1.0)) if metrics.directory else None
        try:
            yield
        finally:
            if flusher is not None:
                flusher.cancel()
            await fhir_servers.aclose()
            if jwks_http is not None:
                await jwks_http.aclose()
            store.close()

    app = FastAPI(
        title="fhir_module CDS Hooks service",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by routes/docs.py from local assets, not a CDN
        redoc_url=None,
        **_WITHOUT_FASTAPI_TELEMETRY,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.fhir_servers = fhir_servers
    app.state.validation_runner = validation_runner
    app.state.store = store
    app.state.metrics = metrics
    app.state.card_ids = CardIds(store.secret(CARD_IDS_SECRET), engine)
    app.state.authenticator = Authenticator(settings, jwks_http, store)
    if not settings.auth_enabled:
        log.warning("authentication is OFF: no trusted clients configured; serve on loopback only")
    elif not settings.public_base_url:
        # Without it, JWT `aud` is checked against the Host header the client sent.
        log.warning("FHIR_MODULE_PUBLIC_BASE_URL is not set: JWT audiences are checked against the "
                    "request's Host header; set it in production")

    install_error_handlers(app)
    # The service call is a route of the app itself, tried first: FastAPI matches the routes of an
    # included router twice per call (to pick the router, then to handle it), after trying each
    # router before it (86k instructions of an unrelated order-select's 2,650k).
    app.router.routes.extend(services.router.routes)
    for module in (discovery, feedback, health, monographs, metrics_route, docs, preview):
        app.include_router(module.router)
    app.include_router(preview.data)
    app.mount(docs.ASSETS_URL, docs.assets(), name="docs-assets")
    if settings.preview_enabled:  # off: its assets are not served either
        app.mount(preview.ASSETS_URL, preview.assets(), name="preview-assets")
    # FHIR $validate (owned by fhir_module.validation); behind the same client authentication.
    from fhir_module.validation.api import metadata_router, router as validation_router

    app.include_router(validation_router, dependencies=[Depends(require_client)])
    app.include_router(metadata_router)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]

    # Added last = outermost: CORS headers also go on 413 answers from the size limit.
    app.add_middleware(BodyLimits, max_bytes=settings.max_body_bytes, timeout=settings.body_timeout)
    app.add_middleware(
        CORS,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Accept"],
        allow_credentials=False,
        max_age=600,
    )
    app.add_middleware(RequestMetrics, metrics=metrics)
    if not settings.auth_enabled:
        app.add_middleware(LoopbackOnly)  # outermost: nothing runs for a refused caller
    # Secrets never reach a log line, under `fhir-module serve` or any server that loaded this
    # factory (uvicorn configured its handlers before calling it).
    install_log_redaction()
    if settings.log_format == "json":
        install_json_logs()
    return app


def _jwks_client(timeout: float) -> Any:
    import httpx

    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=10, max_keepalive_connections=5),
        follow_redirects=False,
        trust_env=False,
    )


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("fhir-module")
    except Exception:  # not installed as a distribution (running from a source tree)
        return "0"


def _collect(metrics: Metrics, fhir_servers: FhirServers, runner: Any, engine: Any) -> None:
    """What other parts count, read at each scrape."""

    def read() -> list[tuple[str, dict[str, Any], float]]:
        values: list[tuple[str, dict[str, Any], float]] = []
        for lane in fhir_servers.lanes():
            for outcome, count in lane.counts.items():
                values.append(("fhir_module_fetches_total", {"server": lane.base, "outcome": outcome}, count))
            values.append(("fhir_module_fetches_in_flight", {"server": lane.base}, lane.in_flight))
            values.append(("fhir_module_fetches_waiting", {"server": lane.base}, lane.waiting))
        for outcome, count in runner.counts.items():
            values.append(("fhir_module_validations_total", {"outcome": outcome}, count))
        for check, count in engine.evaluation_failures.by_check().items():
            values.append(("fhir_module_evaluation_failures_total", {"check": check}, count))
        return values

    metrics.collect_from(read)


async def _flush_every(metrics: Metrics, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            metrics.flush()
        except OSError as exc:  # the folder went away: say so once a period, keep serving
            log.warning("metrics snapshot not written: %s", exc)
