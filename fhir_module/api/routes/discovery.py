"""`GET /cds-services`: the CDS Hooks discovery document, straight from the engine's knowledge."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ..auth import require_client
from ..models import DiscoveryResponse
from ..openapi import ERROR_RESPONSES

router = APIRouter(tags=["discovery"])


@router.get(
    "/cds-services",
    response_model=DiscoveryResponse,
    responses=ERROR_RESPONSES(401, 403, 503),
    summary="List the CDS services, their hooks and prefetch templates",
    dependencies=[Depends(require_client)],
)
async def discovery(request: Request) -> JSONResponse:
    return JSONResponse({"services": request.app.state.engine.services()})
