"""The Dockerfile and compose.yaml name real things, and the image's command really serves.

Docker does not run here, so what the files say is checked against the repository instead: the
paths they copy exist, the entry point is the package's console script, every FHIR_MODULE_ variable
is a setting the service reads, the image runs as a user of its own, and the compose wiring agrees
with itself (database host, trusted-clients mount, ports). Then the Dockerfile's CMD, exactly as
written (only the port is moved, by a later `--port`, so parallel runs do not collide), is run
with the compose file's environment against a real PostgreSQL: it must refuse to start without
trusted clients, and with them serve authenticated hooks and pass the image's own HEALTHCHECK.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from fhir_module import config
from tests.api.helpers import free_port, running_service
from tests.support.jwt_clients import JwtClient, write_trusted_clients

REPO = Path(__file__).resolve().parents[2]
SERVICE = "fhir-module"  # the compose service running the image
EXAMPLE_REQUEST = REPO / "examples" / "requests" / "order-select-renal-moderate.json"


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        instructions.append((keyword.upper(), " ".join(arguments.split())))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def instruction(name: str) -> list[str]:
    return [arguments for keyword, arguments in dockerfile() if keyword == name]


def cmd() -> list[str]:
    [command] = instruction("CMD")
    return json.loads(command)  # exec form: no shell between docker and the service (signals reach it)


def healthcheck() -> list[str]:
    [check] = instruction("HEALTHCHECK")
    options, _, command = check.partition(" CMD ")
    assert options.startswith("--"), check
    return json.loads(command)


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for arguments in instruction("ENV"):
        for pair in arguments.split():
            name, _, value = pair.partition("=")
            env[name] = value
    return env


def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR:?error}."""

    def substitute(match: re.Match[str]) -> str:
        name, operator, word = match.group(1), match.group(2), match.group(3) or ""
        if env.get(name):
            return env[name]
        if operator == ":?":
            raise KeyError(f"compose needs {name}: {word}")
        return word if operator == ":-" else ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", substitute, value)


def service_environment(env: dict[str, str]) -> dict[str, str]:
    return {name: interpolate(str(value), env) for name, value in compose()["services"][SERVICE]["environment"].items()}


KNOWN_SETTINGS = {value for name, value in vars(config).items() if name.startswith("ENV_")}


def test_the_image_is_built_from_real_paths_that_the_build_context_lets_in() -> None:
    allowed = {line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    copies = instruction("COPY")
    assert copies
    for arguments in copies:
        *sources, _target = arguments.split()
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: no such path in the repository"
            assert source.rstrip("/") in allowed, f"COPY {source}: .dockerignore keeps it out of the build context"


def test_the_image_installs_the_package_with_the_postgresql_driver() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    installs = [run for run in instruction("RUN") if "pip install" in run]
    assert installs == [installs[0]] and "'.[postgres]'" in installs[0], installs
    assert any(dep.startswith("psycopg") for dep in project["optional-dependencies"]["postgres"])


def test_what_the_image_installs_carries_every_data_file_of_the_package() -> None:
    """The image installs the package (not an editable checkout): a file that package-data does
    not match would be missing there while every test here passes."""
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["fhir_module"]
    package = REPO / "fhir_module"
    missing = []
    for path in package.rglob("*"):
        if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
            continue
        relative = path.relative_to(package).as_posix()
        if not any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(relative, p.removeprefix("**/")) for p in patterns):
            missing.append(relative)
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"


def test_the_command_is_the_package_entry_point_listening_where_the_image_says() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    command = cmd()
    assert command[:2] == ["fhir-module", "serve"] and scripts["fhir-module"] == "fhir_module.cli:main"
    port = command[command.index("--port") + 1]
    assert instruction("EXPOSE") == [port]
    assert f"{port}:{port}" in compose()["services"][SERVICE]["ports"]
    assert f"127.0.0.1:{port}/readyz" in " ".join(healthcheck())


def test_the_image_runs_as_a_user_of_its_own() -> None:
    order = [keyword for keyword, _ in dockerfile()]
    [user] = instruction("USER")
    assert user not in ("root", "0") and not user.startswith(("root:", "0:"))
    assert any("useradd" in run and run.split()[-1] == user for run in instruction("RUN"))
    # Nothing after USER runs as root, and the service starts after it.
    assert "RUN" not in order[order.index("USER"):] and order.index("USER") < order.index("CMD")
    # It works in its own home, where the default SQLite database goes (an absolute sqlite:////path).
    [useradd] = [run for run in instruction("RUN") if "useradd" in run]
    home = useradd.split("--home-dir ", 1)[1].split()[0]
    assert instruction("WORKDIR")[-1] == home
    assert dockerfile_env()["FHIR_MODULE_DATABASE_URL"].startswith(f"sqlite:///{home}/")


def test_every_variable_the_files_set_is_a_setting_the_service_reads() -> None:
    names = set(dockerfile_env()) | set(compose()["services"][SERVICE]["environment"])
    ours = {name for name in names if name.startswith("FHIR_MODULE_")}
    assert ours, names
    assert ours <= KNOWN_SETTINGS, f"not settings of fhir_module.config: {sorted(ours - KNOWN_SETTINGS)}"
    assert not names - ours - {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR",
                               "PIP_DISABLE_PIP_VERSION_CHECK"}


def test_the_compose_wiring_agrees_with_itself(tmp_path: Path) -> None:
    services = compose()["services"]
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        service_environment({})  # no password, no start (never a default password)
    env = service_environment({"POSTGRES_PASSWORD": "secret"})
    database = urlsplit(env["FHIR_MODULE_DATABASE_URL"])
    postgres = {name: interpolate(str(value), {"POSTGRES_PASSWORD": "secret"})
                for name, value in services["postgres"]["environment"].items()}
    assert database.scheme == "postgresql" and database.hostname == "postgres" and "postgres" in services
    assert (database.username, database.password, database.path) == (
        postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], "/" + postgres["POSTGRES_DB"])
    assert services[SERVICE]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"]
    # The trusted-clients file is mounted where the setting looks for it, from a file the README
    # tells the user to make from the example (which is a valid trusted-clients file).
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in services[SERVICE]["volumes"])
    source = next(host for host, container in mounts.items() if container == env["FHIR_MODULE_TRUSTED_CLIENTS"])
    example = REPO / source.replace(".json", ".example.json")
    assert example.is_file() and config.load_trusted_clients(str(example))
    assert source.lstrip("./") in (REPO / ".gitignore").read_text().split()  # real clients are not committed
    # The settings load as the container would read them (the clients file written elsewhere here).
    env["FHIR_MODULE_TRUSTED_CLIENTS"] = str(example)
    settings = config.load_settings({**dockerfile_env(), **env})
    assert settings.auth_enabled and settings.database_url.startswith("postgresql://")


def command_line(port: int) -> list[str]:
    """The CMD as written; its program is the console script of this interpreter's environment."""
    program, *arguments = cmd()
    script = shutil.which(program, path=str(Path(sys.executable).parent))
    assert script, f"{program} is not installed next to {sys.executable}"
    return [script, *arguments, "--port", str(port)]


def healthcheck_line(port: int) -> list[str]:
    program, *arguments = healthcheck()
    assert program == "python"
    return [sys.executable, *(argument.replace(":8000/", f":{port}/") for argument in arguments)]


def test_the_command_refuses_to_listen_on_every_address_without_trusted_clients(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("FHIR_MODULE_")}
    env["FHIR_MODULE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = subprocess.run(command_line(free_port()), env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "FHIR_MODULE_TRUSTED_CLIENTS" in result.stderr and "refusing to listen" in result.stderr


def test_the_command_serves_with_the_compose_environment(
    tmp_path: Path, jwt_client: JwtClient, postgres_url: str
) -> None:
    env = service_environment({"POSTGRES_PASSWORD": "secret"})
    env["FHIR_MODULE_DATABASE_URL"] = postgres_url  # the throwaway cluster instead of the compose one
    env["FHIR_MODULE_TRUSTED_CLIENTS"] = str(write_trusted_clients(tmp_path / "clients.json", [jwt_client]))
    process_env = {**{k: v for k, v in os.environ.items() if not k.startswith("FHIR_MODULE_")}, **env}
    port = free_port()
    log = tmp_path / "serve.log"
    with running_service(command_line(port), process_env, port, log) as base:
        health = subprocess.run(healthcheck_line(port), capture_output=True, text=True, timeout=30)
        assert health.returncode == 0, health.stderr
        ready = httpx.get(f"{base}/readyz").json()
        assert ready["status"] == "ready" and ready["checks"]["database"]["kind"] == "postgresql", ready

        assert httpx.get(f"{base}/cds-services").status_code == 401  # every CDS call needs a JWT
        assert httpx.get(f"{base}/").status_code == 404  # the preview page is off with trusted clients
        discovery = httpx.get(f"{base}/cds-services", headers=jwt_client.authorization(f"{base}/cds-services"))
        assert discovery.status_code == 200
        service = "levomilnacipran-order-select"
        assert service in {s["id"] for s in discovery.json()["services"]}
        url = f"{base}/cds-services/{service}"
        answer = httpx.post(url, content=EXAMPLE_REQUEST.read_bytes(), headers={
            **jwt_client.authorization(url), "Content-Type": "application/json"})
        assert answer.status_code == 200 and answer.json()["cards"], answer.text
    output = log.read_text()
    assert "client authentication on" in output and "0.0.0.0" in output, output
    stopped = subprocess.run(healthcheck_line(port), capture_output=True, text=True, timeout=30)
    assert stopped.returncode != 0  # and the image's healthcheck says so once the service is gone
