"""`GET /healthz`: liveness for load balancers; open even when authentication is on."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..models import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Service health")
async def healthz(request: Request) -> Health:
    state = request.app.state
    return Health(status="ok", services=len(state.engine.services()), auth=state.authenticator.enabled)
