"""Running servers and wrk for the benchmarks: loopback only, pinned to cores where the machine allows.

The server under test (the service, or the bare FastAPI endpoint) runs on one core and wrk on
another, so the load generator does not steal the server's CPU. Runs are bounded in time.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx

# A bare FastAPI endpoint that parses the same body and answers no cards: the floor we compare to.
BARE_APP = textwrap.dedent("""
    from fastapi import FastAPI, Request
    app = FastAPI()
    @app.post("/cds-services/{service_id}")
    async def answer(service_id: str, request: Request):
        await request.json()
        return {"cards": []}
    @app.get("/healthz")
    async def health():
        return {"status": "ok"}
""")

WRK_SCRIPT = textwrap.dedent("""
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    local file = io.open(os.getenv("BENCH_BODY"), "rb")
    wrk.body = file:read("*a")
    file:close()
""")


def cores() -> tuple[list[str], list[str]]:
    """taskset prefixes for (server, load generator): different cores when there are two or more."""
    taskset = shutil.which("taskset")
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not taskset or len(available) < 2:
        return [], []
    return [taskset, "-c", str(available[0])], [taskset, "-c", str(available[1])]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(base: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with status {process.returncode} before answering")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.02)
    raise SystemExit(f"server at {base} did not answer within {timeout} s")


def service_command(workers: int = 1) -> list[str]:
    command = [sys.executable, "-m", "fhir_module.cli", "serve"]
    return command + (["--workers", str(workers)] if workers > 1 else [])


def bare_command() -> list[str]:
    """The bare app under the uvicorn settings `fhir-module serve` uses (server.py): an access line
    per request at INFO (to the same discarded stdout), no proxy headers, no Server header, the same
    keep-alive. (It ran with --log-level warning and uvicorn's defaults: the service paid for an
    access line, 122k of its ~2,650k instructions per unrelated order-select, that the bare skipped.)"""
    return [sys.executable, "-m", "uvicorn", "bare:app", "--log-level", "info", "--no-proxy-headers",
            "--no-server-header", "--timeout-keep-alive", "5"]


def service_env(folder: str) -> dict[str, str]:
    """The service's environment: no authentication (loopback), a throwaway feedback database."""
    env = dict(os.environ, FHIR_MODULE_DATABASE_URL=f"sqlite:///{folder}/feedback.sqlite3")
    for name in ("FHIR_MODULE_TRUSTED_CLIENTS", "FHIR_MODULE_CONFIG", "FHIR_MODULE_BUNDLE"):
        env.pop(name, None)
    return env


@contextmanager
def running_process(command: list[str], *, pin: list[str], env: dict[str, str] | None = None,
                    cwd: str | None = None, timeout: float = 30.0) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start a server on a free loopback port, yield its base URL and process, stop it."""
    port = free_port()
    process = subprocess.Popen([*pin, *command, "--host", "127.0.0.1", "--port", str(port)], cwd=cwd, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process, timeout=timeout)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running(command: list[str], *, pin: list[str], env: dict[str, str] | None = None,
            cwd: str | None = None) -> Iterator[str]:
    """Start a server on a free loopback port, yield its base URL, stop it."""
    with running_process(command, pin=pin, env=env, cwd=cwd) as (base, _):
        yield base


@contextmanager
def bare_folder() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        Path(folder, "bare.py").write_text(BARE_APP)
        Path(folder, "post.lua").write_text(WRK_SCRIPT)
        yield folder


@dataclass
class Load:
    """One wrk run: throughput and latency percentiles (ms)."""

    requests_per_second: float
    p50: float
    p99: float
    requests: int


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNIT_MS[unit]


def latency_percentiles(output: str) -> dict[str, float]:
    """The 50% and 99% lines of wrk's --latency report, in ms. wrk pads a unit to two characters:
    a time in seconds or minutes ("1.09s ") ends its line with a space."""
    return {p: _ms(v) for p, v in re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+) ?$", output, re.MULTILINE)}


def wrk(url: str, body_file: str, script: str, *, connections: int, seconds: float, pin: list[str]) -> Load:
    """POST the body for `seconds` with `connections` open connections; every answer must be 2xx."""
    command = [*pin, "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "10s",
               "-s", script, url]
    output = subprocess.run(command, env=dict(os.environ, BENCH_BODY=body_file), capture_output=True,
                            text=True, timeout=seconds + 60, check=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise SystemExit(f"wrk saw failed requests against {url}:\n{output}")
    percentiles = latency_percentiles(output)
    return Load(
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50=percentiles["50"],
        p99=percentiles["99"],
        requests=int(re.search(r"(\d+) requests in", output).group(1)),
    )


def require_wrk() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk; .ci/run installs it)")
