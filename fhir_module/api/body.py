"""Reading request bodies: size limit, content type, JSON syntax.

The size limit is an ASGI middleware so it applies before any route reads the body, and counts
the bytes actually received (a client may lie in Content-Length or stream without one).

Every JSON body goes through `read_json_body` (strict JSON: no NaN/Infinity, integers within 64
bits, no lone surrogates, bounded nesting; see `fhir_module.strictjson`), so all endpoints refuse
the same input with the same 400.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_module import strictjson

from .errors import ApiError, operation_outcome, outcome_response

log = logging.getLogger("fhir_module.api.body")

JSON_MEDIA_TYPES = {"application/json", "application/fhir+json"}


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """Answers 413 with an OperationOutcome when a request body exceeds `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                await self._reject(scope, receive, send)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = outcome_response(
            413,
            operation_outcome(f"request body larger than {self.max_bytes} bytes", code="too-costly"),
            {"Connection": "close"},
        )
        await response(scope, receive, send)


def require_json_content_type(request: Request) -> None:
    """415 unless the body is declared as JSON (CDS Hooks bodies are JSON)."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in JSON_MEDIA_TYPES:
        shown = media_type or "none"
        raise ApiError(415, f"content type {shown!r} is not accepted; send application/json")


async def read_json_body(request: Request) -> Any:
    """The body as a JSON value; 400 for an empty body or anything `strictjson` refuses."""
    try:
        raw = await request.body()
    except ClientDisconnect:
        # The client left mid-body: nobody will read an answer, and it is not a server fault.
        log.info("%s %s: the client disconnected before sending the whole body", request.method, request.url.path)
        raise ApiError(400, "the client disconnected before sending the whole body", code="incomplete") from None
    if not raw.strip():
        raise ApiError(400, "the request body is empty; a JSON object is expected", code="required")
    try:
        return strictjson.loads(raw)
    except strictjson.JsonError as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc.message}", code=exc.code) from None


async def read_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; 400 for empty, malformed or non-object bodies."""
    value = await read_json_body(request)
    if not isinstance(value, dict):
        raise ApiError(400, "the request body must be a JSON object", code="structure")
    return value
