"""Reading request bodies: size and time limits, content type, JSON syntax.

The limits are an ASGI middleware so they apply before any route reads the body: the size counts
the bytes actually received (a client may lie in Content-Length or stream without one), the time
runs from the request head to the body's last byte.

Every JSON body goes through `read_json_body` (strict JSON: no NaN/Infinity, integers within 64
bits, no lone surrogates, bounded nesting; see `fhir_module.strictjson`), so all endpoints refuse
the same input with the same 400.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import Request
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_module import strictjson

from .errors import ApiError, operation_outcome, outcome_response
from .memory import LARGE_BODY_BYTES, keep_parse_memory

log = logging.getLogger("fhir_module.api.body")

JSON_MEDIA_TYPES = {"application/json", "application/fhir+json"}


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


class BodyLimits:
    """Answers 413 when a request body exceeds `max_bytes`, and 408 when it has not fully arrived
    `timeout` seconds after the request head (a client that sends half a body and waits would
    otherwise hold its connection, and the route, for good). Both with an OperationOutcome and
    `Connection: close`."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float = 15.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

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
                await self._reject(scope, send, 413, f"request body larger than {self.max_bytes} bytes",
                                   "too-costly")
                return
        received = 0
        complete = False
        started = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout

        async def limited_receive() -> Message:
            nonlocal received, complete
            if complete:  # the body is in: later calls wait for a disconnect, without deadline
                return await receive()
            message = await _receive_by(deadline, loop, receive)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
                complete = not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(scope, send, 413, f"request body larger than {self.max_bytes} bytes",
                                   "too-costly")
        except _TooSlow:
            log.info("%s %s: the request body did not arrive within %g s", scope.get("method"),
                     scope.get("path"), self.timeout)
            if not started:
                await self._reject(scope, send, 408, f"the request body did not arrive within {self.timeout:g} s",
                                   "timeout")

    @staticmethod
    async def _reject(scope: Scope, send: Send, status: int, message: str, code: str) -> None:
        response = outcome_response(status, operation_outcome(message, code=code), {"Connection": "close"})

        async def no_body() -> Message:  # the response must not wait for the rest of the body
            return {"type": "http.disconnect"}

        await response(scope, no_body, send)


async def _receive_by(deadline: float, loop: asyncio.AbstractEventLoop, receive: Receive) -> Message:
    """`await receive()`, or _TooSlow once the loop's clock passes `deadline`: what
    `asyncio.timeout_at` does (a timer that cancels the task, the cancellation withdrawn once
    handled), without its context manager and state machine on every request (20k instructions
    of an order-select)."""
    # The task of the loop given: without a loop, current_task asks for the running one, and
    # Python checks it with a getpid() system call each time (one per request saved here).
    task = asyncio.current_task(loop)
    assert task is not None, "a request is served by a task"
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    timer = loop.call_at(deadline, expire)
    try:
        return await receive()
    except asyncio.CancelledError:
        if expired:
            expired = False  # withdrawn here
            if task.uncancel() == 0:  # ours alone: the body was too slow
                raise _TooSlow from None
        raise  # cancelled by someone else (a shutdown, a disconnect): theirs to handle
    finally:
        timer.cancel()
        if expired:  # the deadline passed as the message came in: the cancellation is withdrawn
            task.uncancel()


def require_json_content_type(request: Request) -> None:
    """415 unless the body is declared as JSON (CDS Hooks bodies are JSON)."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in JSON_MEDIA_TYPES:
        shown = media_type or "none"
        raise ApiError(415, f"content type {shown!r} is not accepted; send application/json")


async def read_body(request: Request) -> bytes:
    """The raw body; a client that leaves mid-body is an INFO line and a 400 nobody reads."""
    try:
        return await request.body()
    except ClientDisconnect:
        # The client left mid-body: nobody will read an answer, and it is not a server fault.
        log.info("%s %s: the client disconnected before sending the whole body", request.method, request.url.path)
        raise ApiError(400, "the client disconnected before sending the whole body", code="incomplete") from None


async def read_json_body(request: Request) -> Any:
    """The body as a JSON value; 400 for an empty body or anything `strictjson` refuses."""
    raw = await read_body(request)
    if not raw or raw.isspace():  # not `raw.strip()`: a copy of the whole body to test it
        raise ApiError(400, "the request body is empty; a JSON object is expected", code="required")
    if len(raw) >= LARGE_BODY_BYTES:  # its parse buffer is past what glibc keeps by itself (memory.py)
        keep_parse_memory(request.app.state.settings.max_body_bytes)
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
