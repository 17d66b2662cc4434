"""Connections that never finish a request are closed, a body that stops coming is a 408, and the
rules that hold under `fhir-module serve` (secrets never logged, no unauthenticated call from
another machine) also hold under plain `uvicorn --factory`."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_module.api import create_app
from fhir_module.config import Settings
from tests.api.helpers import free_port, running_service, scenario_request

CONNECTIONS = 30  # of each kind


def service_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "FHIR_MODULE_DATABASE_URL": f"sqlite:///{tmp_path / 'f.sqlite3'}", **extra}
    env.pop("FHIR_MODULE_TRUSTED_CLIENTS", None)
    return env


def closed_by_server(sock: socket.socket) -> bytes | None:
    """What the server sent before closing, or None while the connection is still open."""
    sock.settimeout(0.5)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except socket.timeout:
        return None
    except ConnectionResetError:
        pass
    return received


def closed_within(sock: socket.socket, deadline: float) -> bytes | None:
    """What the server sent before closing, waiting until `deadline` at most (None: still open)."""
    while True:
        received = closed_by_server(sock)
        if received is not None or time.monotonic() > deadline:
            return received


def test_unfinished_requests_are_closed(tmp_path: Path) -> None:
    port = free_port()
    timeout = 2.0
    env = service_env(tmp_path, FHIR_MODULE_HEADER_TIMEOUT=str(timeout), FHIR_MODULE_BODY_TIMEOUT=str(timeout))
    command = [sys.executable, "-m", "fhir_module.cli", "serve", "--port", str(port)]
    with running_service(command, env, port, tmp_path / "serve.log") as base:
        silent, partial_head, partial_body = [], [], []
        first = time.monotonic()
        for _ in range(CONNECTIONS):
            silent.append(socket.create_connection(("127.0.0.1", port)))
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"POST /cds-services/x HTTP/1.1\r\nHost: x\r\nContent-Ty")
            partial_head.append(sock)
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"POST /fhir/$validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n{\"resourceType\": ")
            partial_body.append(sock)
        last = time.monotonic()
        if last - first < timeout / 2:  # on a machine too busy to open 90 connections in 1 s, this says nothing
            assert select.select(silent + partial_head + partial_body, [], [], 0)[0] == []  # all open, for now
        # Each closed by its deadline (polled, with room for a loaded machine).
        deadline = last + timeout + 8.0
        assert [closed_within(s, deadline) for s in silent] == [b""] * CONNECTIONS
        assert [closed_within(s, deadline) for s in partial_head] == [b""] * CONNECTIONS
        answers = [closed_within(s, deadline) for s in partial_body]
        assert all(a is not None and a.startswith(b"HTTP/1.1 408 ") and b"did not arrive" in a for a in answers), answers[:2]
        assert time.monotonic() - first > timeout  # not closed at once
        for sock in silent + partial_head + partial_body:
            sock.close()
        assert httpx.get(f"{base}/healthz").status_code == 200  # and it still serves
    text = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in text and "ERROR" not in text


def test_a_kept_alive_connection_gets_a_head_deadline_for_each_request(tmp_path: Path) -> None:
    port = free_port()
    env = service_env(tmp_path, FHIR_MODULE_HEADER_TIMEOUT="1")
    command = [sys.executable, "-m", "fhir_module.cli", "serve", "--port", str(port)]
    with running_service(command, env, port, tmp_path / "serve.log"):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(5)
            response = b""
            while not response.endswith(b"}"):  # the whole response: head, then the JSON body
                response += sock.recv(65536)
            assert response.startswith(b"HTTP/1.1 200 ")
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")  # the next request stalls in its head
            time.sleep(2.0)  # past the head deadline, well before the 5 s keep-alive timeout
            assert closed_by_server(sock) == b""


def test_a_body_that_stops_coming_is_408(live: Any, discovery: dict[str, Any]) -> None:
    service_id, body = scenario_request("pub-clean", discovery)
    with live(body_timeout=0.5) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(f"POST /cds-services/{service_id} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         f"Content-Length: 5000\r\n\r\n".encode() + b'{"hook": ')
            sock.settimeout(5)
            answer = b""
            while chunk := sock.recv(65536):  # to the close: the head and body may come apart
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"application/fhir+json" in answer and b"OperationOutcome" in answer
        # A body that arrives in time, in pieces, is read as usual.
        assert httpx.post(f"{base}/cds-services/{service_id}", json=body, timeout=30).status_code == 200


def test_without_authentication_only_loopback_clients_are_served(engine: Any, tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'f.sqlite3'}"), engine)

    async def call(client: tuple[str, int], path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://cds.example.org") as http:
            return await http.get(path)

    for path in ("/cds-services", "/openapi.json", "/monographs/levomilnacipran"):
        refused = asyncio.run(call(("192.0.2.10", 5000), path))
        assert refused.status_code == 403, path
        assert refused.json()["issue"][0]["code"] == "forbidden"
        assert "only clients on its own machine" in refused.json()["issue"][0]["diagnostics"]
    assert asyncio.run(call(("192.0.2.10", 5000), "/healthz")).status_code == 200  # probes stay open
    assert asyncio.run(call(("127.0.0.1", 5000), "/cds-services")).status_code == 200
    assert asyncio.run(call(("::1", 5000), "/cds-services")).status_code == 200


def test_plain_uvicorn_factory_redacts_and_keeps_the_loopback_rule(tmp_path: Path, discovery: dict[str, Any]) -> None:
    """`uvicorn fhir_module.api:create_app --factory`, no fhir-module code in the logging setup."""
    port = free_port()
    log = tmp_path / "uvicorn.log"
    command = [sys.executable, "-m", "uvicorn", "fhir_module.api:create_app", "--factory",
               "--host", "127.0.0.1", "--port", str(port)]
    secret, jwt_like = "s3cr3t-api-key-value", "eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl"
    with running_service(command, service_env(tmp_path), port, log) as base:
        assert httpx.get(f"{base}/cds-services?key={secret}&token={jwt_like}").status_code == 200
        service_id, body = scenario_request("pub-clean", discovery)
        body["context"]["patientId"] = f"Bearer {jwt_like}"  # a secret reaching an error message
        response = httpx.post(f"{base}/cds-services/{service_id}?api_key={secret}", json=body, timeout=30)
        assert response.status_code == 400
    text = log.read_text()
    assert "GET /cds-services?key=[REDACTED]&token=[REDACTED]" in text, text
    assert secret not in text and jwt_like not in text


def test_the_documented_plain_uvicorn_command_closes_unfinished_heads(tmp_path: Path) -> None:
    """README: `uvicorn fhir_module.api:create_app --factory --http fhir_module.api.protocol:GuardedH11Protocol`
    keeps the head deadline (plain uvicorn alone never closes a connection whose head stalls)."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "fhir_module.api:create_app", "--factory",
               "--http", "fhir_module.api.protocol:GuardedH11Protocol", "--host", "127.0.0.1", "--port", str(port)]
    env = service_env(tmp_path, FHIR_MODULE_HEADER_TIMEOUT="1")
    with running_service(command, env, port, tmp_path / "uvicorn.log"):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
            assert closed_within(sock, time.monotonic() + 10) == b""


@pytest.mark.parametrize("line, expected", [
    ("GET /x?key=abc&patient=p1", "GET /x?key=[REDACTED]&patient=p1"),
    ("/x?api_key=1&client_secret=2&sig=3&password=4", "/x?api_key=[REDACTED]&client_secret=[REDACTED]&sig=[REDACTED]&password=[REDACTED]"),
    ("Observation?patient=p1&code=http://loinc.org|2164-2", "Observation?patient=p1&code=http://loinc.org|2164-2"),
])
def test_credential_named_query_values_are_redacted(line: str, expected: str) -> None:
    from fhir_module.api.redaction import redact

    assert redact(line) == expected


def test_the_body_deadline_cancels_only_its_own_wait() -> None:
    # body.py's deadline (asyncio.timeout_at's way, by hand): past it the wait is _TooSlow and the
    # task goes on uncancelled; a message in time is returned; someone else's cancel stays theirs.
    import asyncio

    from fhir_module.api.body import _receive_by, _TooSlow

    message = {"type": "http.request", "body": b"{}", "more_body": False}

    async def never() -> dict:
        await asyncio.Event().wait()
        return message

    async def at_once() -> dict:
        return message

    async def late_then_on() -> str:
        loop = asyncio.get_running_loop()
        try:
            await _receive_by(loop.time() + 0.05, loop, never)
        except _TooSlow:
            await asyncio.sleep(0.01)  # not cancelled afterwards
            return "too slow, then on"
        return "no deadline"

    async def in_time() -> dict:
        loop = asyncio.get_running_loop()
        got = await _receive_by(loop.time() + 0.05, loop, at_once)
        await asyncio.sleep(0.1)  # past the deadline: its timer was cancelled
        return got

    async def cancelled_by_another() -> str:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(_receive_by(loop.time() + 5, loop, never))
        await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "not cancelled"

    assert asyncio.run(late_then_on()) == "too slow, then on"
    assert asyncio.run(in_time()) == message
    assert asyncio.run(cancelled_by_another()) == "cancelled"
