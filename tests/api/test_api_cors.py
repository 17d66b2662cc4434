"""The service's CORS middleware (fhir_module/api/cors.py) answers every call as Starlette's
CORSMiddleware does: calls without an Origin take a shorter way to the same `Vary: Origin`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Message, Receive, Scope, Send

from fhir_module.api.cors import CORS

# The service's settings (app.py) with its default origins ("*") and with a list of origins.
OPTIONS = dict(allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["Authorization", "Content-Type", "Accept"],
               allow_credentials=False, max_age=600)
ORIGINS = (["*"], ["https://ehr.example"])

# Responses whose headers hold no Vary, one, or two (which CORSMiddleware folds into the first).
RESPONSES = {
    "/plain": [(b"content-type", b"application/json")],
    "/one-vary": [(b"vary", b"Accept-Encoding"), (b"content-type", b"text/plain")],
    "/two-varies": [(b"vary", b"Accept"), (b"x-other", b"1"), (b"vary", b"Cookie")],
    "/no-headers": None,
}

CALLS = [
    ("POST", "/plain", []),
    ("GET", "/one-vary", []),
    ("GET", "/two-varies", []),
    ("POST", "/no-headers", []),
    ("OPTIONS", "/plain", [(b"access-control-request-method", b"POST")]),  # no Origin: not a preflight
    ("POST", "/plain", [(b"origin", b"https://ehr.example")]),
    ("GET", "/two-varies", [(b"origin", b"https://ehr.example")]),
    ("POST", "/one-vary", [(b"origin", b"https://elsewhere.example")]),
    ("OPTIONS", "/plain", [(b"origin", b"https://ehr.example"), (b"access-control-request-method", b"POST")]),
    ("OPTIONS", "/plain", [(b"origin", b"https://elsewhere.example"), (b"access-control-request-method", b"PUT")]),
]


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    start: dict[str, Any] = {"type": "http.response.start", "status": 200}
    headers = RESPONSES[scope["path"]]
    if headers is not None:
        start["headers"] = tuple(headers)  # ASGI allows any iterable of pairs
    await send(start)
    await send({"type": "http.response.body", "body": b"{}"})


def _call(middleware: Any, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> list[Message]:
    scope = {"type": "http", "method": method, "path": path, "headers": [(b"host", b"x"), *headers],
             "query_string": b"", "scheme": "http", "root_path": "", "http_version": "1.1", "server": ("x", 80)}
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append({**message, "headers": list(message.get("headers", []))} if "status" in message else message)

    asyncio.run(middleware(scope, receive, send))
    return sent


@pytest.mark.parametrize("origins", ORIGINS)
def test_cors_answers_every_call_as_starlettes_middleware(origins):
    ours, starlettes = CORS(_app, allow_origins=origins, **OPTIONS), CORSMiddleware(_app, allow_origins=origins, **OPTIONS)
    for method, path, headers in CALLS:
        assert _call(ours, method, path, headers) == _call(starlettes, method, path, headers), (method, path, headers)


def test_a_call_without_origin_varies_on_origin():
    start = _call(CORS(_app, allow_origins=["*"], **OPTIONS), "GET", "/two-varies", [])[0]
    assert start["headers"] == [(b"vary", b"Accept, Cookie, Origin"), (b"x-other", b"1")]
