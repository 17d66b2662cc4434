"""A real FHIR R4 server for tests: Medplum's FHIR router in Node, started on a loopback port.

The product fetches from EHR FHIR servers; tests point it at this one instead of a mock. The Node side
lives in ``tests/support/fhir_server/`` (``server.js`` + a committed ``package-lock.json``).

If ``node`` or ``npm`` is missing, starting the server raises :class:`FhirServerUnavailable` and the
``fhir_server`` fixture FAILS the test: a missing part is a broken environment, not a reason to skip.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

SERVER_DIR = Path(__file__).resolve().parent / "fhir_server"
READY_PREFIX = "FHIR_SERVER_READY "
FHIR_JSON = "application/fhir+json"


class FhirServerUnavailable(RuntimeError):
    """The test FHIR server cannot be started (missing Node/npm, failed install, no ready signal)."""


class FhirServerError(RuntimeError):
    """The FHIR server refused a request made by the test support code."""


def _require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FhirServerUnavailable(
            f"'{name}' is not on PATH: the FHIR test server needs Node.js 20 and npm "
            "(`.ci/run` installs them; locally: apt-get install -y nodejs npm)"
        )
    return path


def ensure_node_modules(server_dir: Path = SERVER_DIR) -> None:
    """Runs ``npm ci`` once when the server's dependencies are not installed yet."""
    marker = server_dir / "node_modules" / "@medplum" / "fhir-router" / "package.json"
    if marker.exists():
        return
    npm = _require_tool("npm")
    # Two test sessions starting at once must not run `npm ci` over each other.
    with open(Path(tempfile.gettempdir()) / "fhir-module-npm-ci.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=server_dir,
            capture_output=True,
            text=True,
            timeout=600,
        )
    if proc.returncode != 0 or not marker.exists():
        raise FhirServerUnavailable(
            f"`npm ci` in {server_dir} failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )


class FhirServer:
    """A running test FHIR server; ``base_url`` is its FHIR base (no trailing slash)."""

    def __init__(self, process: subprocess.Popen[str], base_url: str, stderr_tail: list[str] | None = None) -> None:
        self.process = process
        self.base_url = base_url
        self._client = httpx.Client(base_url=base_url, timeout=30.0, headers={"Accept": FHIR_JSON})
        # The last lines the server wrote to stderr (drained by a thread so the pipe never fills up).
        self.stderr_tail = stderr_tail if stderr_tail is not None else []

    def __repr__(self) -> str:
        return f"FhirServer({self.base_url!r}, pid={self.process.pid})"

    # -- data -------------------------------------------------------------------------------------

    def load(self, resources: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Stores resources with one transaction of PUTs, so their ids are kept; returns the response Bundle."""
        entries = []
        for index, resource in enumerate(resources):
            if not isinstance(resource, dict):
                raise ValueError(f"resource #{index} is not a JSON object: {resource!r}")
            rtype, rid = resource.get("resourceType"), resource.get("id")
            if not isinstance(rtype, str) or not rtype:
                raise ValueError(f"resource #{index} has no resourceType")
            if not isinstance(rid, str) or not rid:
                raise ValueError(f"resource #{index} ({rtype}) has no id; load() keeps ids, so one is required")
            entries.append({"resource": resource, "request": {"method": "PUT", "url": f"{rtype}/{rid}"}})
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        response = self._client.post("", json=bundle, headers={"Content-Type": FHIR_JSON})
        body = _json_or_text(response)
        if response.status_code != 200:
            raise FhirServerError(f"transaction failed with HTTP {response.status_code}: {body}")
        for index, entry in enumerate(body.get("entry", [])):
            status = str(entry.get("response", {}).get("status", ""))
            if not status.startswith("2"):
                raise FhirServerError(f"transaction entry #{index} failed with status {status!r}: {entry}")
        return body

    def reset(self) -> None:
        """Empties the server's repository (a test-only endpoint outside the FHIR base)."""
        root = self.base_url.rsplit("/fhir", 1)[0]
        response = httpx.post(f"{root}/__admin/reset", timeout=30.0)
        if response.status_code != 204:
            raise FhirServerError(f"reset failed with HTTP {response.status_code}: {response.text}")

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GETs ``path`` relative to the base (``Patient/1``, ``MedicationRequest``) and returns the JSON body.

        Raises :class:`FhirServerError` on a non-2xx answer, with the server's OperationOutcome.
        """
        response = self._client.get(path, params=params)
        body = _json_or_text(response)
        if not response.is_success:
            raise FhirServerError(f"GET {path} {params or ''} gave HTTP {response.status_code}: {body}")
        return body

    def search_ids(self, resource_type: str, params: dict[str, Any] | None = None) -> list[str]:
        """Ids of the resources a type search returns, in the server's order."""
        bundle = self.get(resource_type, params)
        return [entry["resource"]["id"] for entry in bundle.get("entry", [])]

    # -- lifecycle --------------------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> None:
        """Stops the Node process (SIGTERM, then SIGKILL if it lingers)."""
        self._client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> FhirServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _drain(stream: Any, sink: list[str], limit: int = 200) -> None:
    for line in stream:
        sink.append(line)
        del sink[:-limit]


def start_fhir_server(port: int = 0, timeout: float = 60.0) -> FhirServer:
    """Starts the test FHIR server and waits until ``/metadata`` answers.

    ``port=0`` lets the OS pick a free loopback port (no race between choosing and binding it);
    the server announces the port it got on its ready line.
    """
    node = _require_tool("node")
    _require_tool("npm")
    ensure_node_modules()
    process = subprocess.Popen(
        [node, str(SERVER_DIR / "server.js"), str(port)],
        cwd=SERVER_DIR,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NODE_ENV": "test"},
    )
    stderr_tail: list[str] = []
    threading.Thread(target=_drain, args=(process.stderr, stderr_tail), daemon=True).start()

    # Read the ready line in a thread so a silent process cannot hang the test session.
    ready: list[str] = []
    stdout_tail: list[str] = []

    def read_stdout() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if not ready and line.startswith(READY_PREFIX):
                ready.append(line[len(READY_PREFIX) :].strip())
            else:
                stdout_tail.append(line)
                del stdout_tail[:-200]

    threading.Thread(target=read_stdout, daemon=True).start()

    deadline = time.monotonic() + timeout
    while not ready:
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.kill()
            process.wait()
            raise FhirServerUnavailable(
                f"FHIR test server did not report ready (exit code {process.returncode}); stderr:\n"
                + "".join(stderr_tail)[-3000:]
            )
        time.sleep(0.05)

    server = FhirServer(process, ready[0], stderr_tail)
    last_error = ""
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{server.base_url}/metadata", timeout=5.0)
            if response.status_code == 200 and response.json().get("resourceType") == "CapabilityStatement":
                return server
            last_error = f"HTTP {response.status_code}: {response.text[:500]}"
        except httpx.HTTPError as exc:
            last_error = repr(exc)
        time.sleep(0.1)
    server.stop()
    raise FhirServerUnavailable(f"FHIR test server at {server.base_url} never answered /metadata: {last_error}")


@pytest.fixture(scope="session")
def fhir_server() -> Iterator[FhirServer]:
    """A real FHIR R4 server for the whole test session (empty at start; use ``load`` and ``reset``)."""
    try:
        server = start_fhir_server()
    except FhirServerUnavailable as exc:
        pytest.fail(f"FHIR test server unavailable: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
