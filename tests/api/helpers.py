"""Helpers for the HTTP service tests: the real engine, the app under real uvicorn on a loopback
port, and a small FHIR JSON server (http.server) that answers from a scenario's chart."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvicorn

from fhir_module.knowledge import builtin_module_dir
from tests.support.scenarios import answer_query, build_request, load_scenario

SCENARIOS = builtin_module_dir("levomilnacipran") / "cases" / "public"


def make_engine() -> Any:
    """The real engine with its built-in knowledge."""
    from fhir_module.engine import Engine

    return Engine.default()


def service_for(discovery: dict[str, Any], hook: str, module: str = "levomilnacipran") -> dict[str, Any]:
    """The module's service of the hook (the scenarios here are the levomilnacipran module's)."""
    return next(s for s in discovery["services"] if s["hook"] == hook and s["id"].startswith(f"{module}-"))


def scenario_request(name: str, discovery: dict[str, Any], *, fhir_server: str | None = None,
                     prefetch: bool = True) -> tuple[str, dict[str, Any]]:
    """(service id, request body) for a public scenario."""
    scenario = load_scenario(SCENARIOS / f"{name}.json")
    service = service_for(discovery, scenario.hook)
    return service["id"], build_request(scenario, service, fhir_server=fhir_server, prefetch=prefetch)


# -- the app under uvicorn ---------------------------------------------------------------------


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Runs `app` under uvicorn in a thread on a free loopback port; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)











@contextmanager
def running_service(command: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """Runs a service process (`fhir-module serve`, `uvicorn ...`) on `port`, its output in `log`;
    yields its base URL once /healthz answers, and stops it afterwards."""
    process = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a FHIR JSON server ------------------------------------------------------------------------


@dataclass
class FhirJsonServer:
    """Answers FHIR reads and searches from `record` (via the scenario harness's query logic).

    `page_size` splits searchsets into pages linked by `next`; `fail` maps a resource type to an
    HTTP status to answer instead; `replace` a resource type to a body answered instead (200);
    `requests` records (path+query, Authorization header).
    """

    record: list[dict[str, Any]] = field(default_factory=list)
    page_size: int | None = None
    fail: dict[str, int] = field(default_factory=dict)
    replace: dict[str, Any] = field(default_factory=dict)  # resource type -> body answered with 200
    delay: float = 0.0
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    next_link_base: str | None = None  # where `next` links point (default: this server)
    echo_authorization: bool = False  # failures quote the request's Authorization header, as some servers do

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                owner.requests.append((self.path, self.headers.get("Authorization")))
                if owner.delay:
                    time.sleep(owner.delay)
                status, body = owner.answer(self.path)
                if owner.echo_authorization and isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
                    body = {**body, "issue": [{"severity": "error", "code": "login",
                                               "diagnostics": f"token rejected: {self.headers.get('Authorization')}"}]}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/fhir"

    def answer(self, raw_path: str) -> tuple[int, Any]:
        parts = urlsplit(raw_path)
        relative = parts.path[len("/fhir/"):] + (f"?{parts.query}" if parts.query else "")
        resource_type = relative.split("?")[0].split("/")[0]
        if resource_type in self.replace:
            return 200, self.replace[resource_type]
        if resource_type in self.fail:
            status = self.fail[resource_type]
            return status, {"resourceType": "OperationOutcome",
                            "issue": [{"severity": "error", "code": "exception", "diagnostics": "failed"}]}
        page = 0
        query = [q for q in parts.query.split("&") if q and not q.startswith("__page=")]
        for q in parts.query.split("&"):
            if q.startswith("__page="):
                page = int(q.split("=", 1)[1])
        clean = relative.split("?")[0] + ("?" + "&".join(query) if query else "")
        result = answer_query(clean, self.record, self.base)
        if result is None:
            return 404, {"resourceType": "OperationOutcome",
                         "issue": [{"severity": "error", "code": "not-found", "diagnostics": "gone"}]}
        if self.page_size and result.get("resourceType") == "Bundle":
            entries = result.get("entry", [])
            chunk = entries[page * self.page_size:(page + 1) * self.page_size]
            result = {**result, "entry": chunk}
            if (page + 1) * self.page_size < len(entries):
                base = self.next_link_base or self.base
                sep = "&" if "?" in clean else "?"
                result["link"] = [{"relation": "next", "url": f"{base}/{clean}{sep}__page={page + 1}"}]
        return 200, result

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()





def post(url: str, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(url, json=body, timeout=30, **kwargs)
