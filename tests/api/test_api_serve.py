"""`fhir-module serve`: refuses an open bind without authentication, says where it listens and
whether authentication is on, and serves the knowledge of `--bundle FILE`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fhir_module.api.server import check_bind
from fhir_module.config import ConfigError, Settings, TrustedClient
from fhir_module.knowledge import builtin_module_dirs
from tests.api.helpers import free_port


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fhir_module.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_no_auth_refuses_a_non_loopback_bind(tmp_path: Path) -> None:
    env = {"FHIR_MODULE_DATABASE_URL": f"sqlite:///{tmp_path / 'f.sqlite3'}"}
    result = run_cli("serve", "--host", "0.0.0.0", "--port", str(free_port()), env=env)
    assert result.returncode == 2
    assert "refusing to listen on '0.0.0.0' without client authentication" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_bind() -> None:
    check_bind(Settings(), "127.0.0.1")
    check_bind(Settings(), "::1")
    check_bind(Settings(), "localhost")
    with pytest.raises(ConfigError):
        check_bind(Settings(), "192.168.1.10")
    check_bind(Settings(trusted_clients=(TrustedClient(iss="x", jwks_url="https://x.example.org/j"),)), "0.0.0.0")


def test_configuration_errors_are_reported_without_traceback(tmp_path: Path) -> None:
    result = run_cli("serve", "--port", str(free_port()),
                     env={"FHIR_MODULE_ALLOWED_FHIR_SERVERS": "http://ehr.example.org/fhir"})
    assert result.returncode == 2
    assert "FHIR_MODULE_ALLOWED_FHIR_SERVERS" in result.stderr and "Traceback" not in result.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"resourceType": "Bundle", "type": "collection", "entry": [')
    result = run_cli("serve", "--port", str(free_port()), "--bundle", str(broken),
                     env={"FHIR_MODULE_DATABASE_URL": f"sqlite:///{tmp_path / 'f.sqlite3'}"})
    assert result.returncode == 2
    assert "cannot start" in result.stderr and "Traceback" not in result.stderr


def test_serve_a_bundle_and_say_so(tmp_path: Path) -> None:
    bundle_path = tmp_path / "bundle.json"
    exported = run_cli("export", "--fhir-version", "R4", "-o", str(bundle_path))
    assert exported.returncode == 0, exported.stderr
    bundle = json.loads(bundle_path.read_text())
    plan = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "PlanDefinition"
                and "title" in e["resource"])
    plan["title"] = "Edited title from the served bundle"
    bundle_path.write_text(json.dumps(bundle))

    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "FHIR_MODULE_DATABASE_URL": f"sqlite:///{tmp_path / 'f.sqlite3'}"}
    env.pop("FHIR_MODULE_TRUSTED_CLIENTS", None)
    process = subprocess.Popen(
        # A bundle carries no test cases: the built-in modules' own are named for its self-test.
        [sys.executable, "-m", "fhir_module.cli", "serve", "--port", str(port), "--bundle", str(bundle_path),
         *(arg for folder in builtin_module_dirs() for arg in ("--cases", str(folder / "cases")))],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                services = httpx.get(f"http://127.0.0.1:{port}/cds-services", timeout=1).json()["services"]
                break
            except httpx.HTTPError:
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "Edited title from the served bundle" in [s.get("title") for s in services]
    text = log.read_text()
    assert f"serving {bundle_path} at http://127.0.0.1:{port}/cds-services" in text
    assert "client authentication OFF" in text


def _serve_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "FHIR_MODULE_DATABASE_URL": f"sqlite:///{tmp_path / 'f.sqlite3'}"}
    env.pop("FHIR_MODULE_TRUSTED_CLIENTS", None)
    return env


@pytest.mark.parametrize("workers", [1, 2])
def test_serving_is_said_once_the_port_is_bound(tmp_path: Path, workers: int) -> None:
    """The line names the port actually bound (`--port 0`), and the service answers at once
    (with several workers the supervisor's bound socket queues the call until a worker takes it)."""
    process = subprocess.Popen([sys.executable, "-m", "fhir_module.cli", "serve", "--port", "0", "--workers", str(workers)],
                               env=_serve_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("fhir-module: self-test passed"), line  # the knowledge proves itself first
        line = process.stdout.readline()
        assert line.startswith("fhir-module: serving the built-in modules at http://127.0.0.1:"), line
        url = line.split(" at ", 1)[1].strip()
        assert not url.endswith(":0/cds-services")
        assert httpx.get(url, timeout=30).status_code == 200  # no retry: bound before it was said
        assert "client authentication OFF" in process.stdout.readline()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_port_in_use_is_a_usage_error_and_never_said_to_be_served(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "fhir_module.cli", "serve", "--port", str(port)],
                                env=_serve_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "serving" not in result.stdout
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("outcome", ["served", "refused"])
def test_the_garbage_collector_is_on_again_once_the_start_is_over(tmp_path: Path, outcome: str) -> None:
    # The start runs without it (cli.py, server.py): served (uvicorn then stopped by the port in
    # use) or refused at the configuration, the process goes on with it on.
    code = f"""
import gc, socket
from fhir_module.cli import main
with socket.socket() as taken:
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    status = main(["serve", "--host", {"127.0.0.1" if outcome == "served" else "0.0.0.0"!r},
                   "--port", str(taken.getsockname()[1])])
print("status", status, "collector on", gc.isenabled())
"""
    result = subprocess.run([sys.executable, "-c", code], env=_serve_env(tmp_path), capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.splitlines()[-1] == "status 2 collector on True", result.stderr
    assert ("cannot listen on" if outcome == "served" else "refusing to listen on") in result.stderr
    assert ("self-test passed" in result.stdout) == (outcome == "served")
