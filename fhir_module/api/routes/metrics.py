"""`GET /metrics`: Prometheus metrics (metrics.py); open like /healthz: counts, no patient data."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

router = APIRouter(tags=["health"])

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics",
            responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text exposition format"}})
async def metrics(request: Request) -> PlainTextResponse:
    # Several workers: reading their snapshots is file I/O, off the event loop.
    text = await run_in_threadpool(request.app.state.metrics.render)
    return PlainTextResponse(text, media_type=CONTENT_TYPE)
