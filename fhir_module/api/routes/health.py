"""`GET /healthz` (liveness) and `GET /readyz` (readiness); both open even when authentication is on.

Liveness says the process answers. Readiness says whether it can do its work, and what is wrong
when it cannot: the feedback database (also where client-token replay is checked), and each
allowed FHIR server's fetch lane (see fetch.py). It answers 503 when the service itself is broken
(the database is unreachable, or a fetch lane is stuck, which only a fault of ours can cause) and
200 "degraded" when a FHIR server is slow or failing: that server's requests get 412 with the
reason, everything else works, and taking the instance out of rotation would not help.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ..models import Health, Readiness

router = APIRouter(tags=["health"])

DATABASE_CHECK_SECONDS = 3.0


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz(request: Request) -> Health:
    state = request.app.state
    return Health(status="ok", services=len(state.engine.services()), auth=state.authenticator.enabled,
                  evaluationFailures=state.engine.evaluation_failures.total)


async def _database(store: Any) -> dict[str, Any]:
    try:
        await asyncio.wait_for(run_in_threadpool(store.ping), DATABASE_CHECK_SECONDS)
    except TimeoutError:
        return {"status": "down", "kind": store.kind, "problem": f"no answer within {DATABASE_CHECK_SECONDS:g} s"}
    except Exception as exc:  # any driver error: the database cannot be used
        return {"status": "down", "kind": store.kind, "problem": type(exc).__name__}
    return {"status": "ok", "kind": store.kind}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: the database is down or fetching is broken"}},
    summary="Readiness: the database and each allowed FHIR server, with what is wrong",
)
async def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    database = await _database(state.store)
    servers = state.fhir_servers.states()
    broken = database["status"] != "ok" or any(s["status"] == "stuck" for s in servers.values())
    degraded = any(s["status"] in ("busy", "failing") for s in servers.values())
    status = "not ready" if broken else "degraded" if degraded else "ready"
    body = {
        "status": status,
        "checks": {
            "knowledge": {"status": "ok", "services": len(state.engine.services())},
            "database": database,
            "fhirServers": servers,
        },
    }
    return JSONResponse(body, status_code=503 if broken else 200)
