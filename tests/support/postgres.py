"""A throwaway PostgreSQL cluster for tests, started on a free loopback port as a non-root user.

PostgreSQL refuses to run as root, so when the tests run as root the cluster belongs to the
``postgres`` system user (created by the Debian package) or, failing that, to a user created here.
Missing binaries make the ``postgres_url`` fixture FAIL: ``.ci/run`` installs them.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DB_USER = "fhir_module_test"
DB_NAME = "fhir_module_test"
FALLBACK_OS_USER = "fhirmoduletestpg"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be started here (missing binaries, failed initdb or start)."""


def find_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl`` (PATH first, then Debian's versioned dirs)."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin; "
        "install them with `apt-get install -y postgresql` (`.ci/run` does)"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _os_user() -> str | None:
    """The user to run PostgreSQL as: None means the current (non-root) user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", FALLBACK_OS_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    proc = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", FALLBACK_OS_USER],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise PostgresUnavailable(f"cannot create a non-root user for PostgreSQL: {proc.stderr.strip()}")
    return FALLBACK_OS_USER


@dataclass
class PostgresCluster:
    """A running cluster; ``url`` points at its test database."""

    bin_dir: Path
    base_dir: Path
    port: int
    os_user: str | None

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Runs a PostgreSQL binary as the cluster's owner."""
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.os_user is not None:
            command = ["runuser", "-u", self.os_user, "--", *command]
        # cwd: the owner may not be allowed into the caller's working directory (e.g. /root).
        proc = subprocess.run(command, cwd=self.base_dir, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            log = self.log_file.read_text(errors="replace")[-3000:] if self.log_file.exists() else ""
            raise PostgresUnavailable(
                f"`{' '.join(args)}` failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n{log}"
            )
        return proc

    def start(self) -> None:
        # Durability settings off: the cluster is thrown away, and tests should be fast.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base_dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self.run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        if self.data_dir.exists():
            self.run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.base_dir, ignore_errors=True)


def start_postgres() -> PostgresCluster:
    """initdb + start on a free loopback port + create the test database."""
    bin_dir = find_bin_dir()
    os_user = _os_user()
    base_dir = Path(tempfile.mkdtemp(prefix="fhir-module-pg-"))
    if os_user is not None:
        entry = pwd.getpwnam(os_user)
        os.chown(base_dir, entry.pw_uid, entry.pw_gid)
    os.chmod(base_dir, 0o700)
    cluster = PostgresCluster(bin_dir=bin_dir, base_dir=base_dir, port=0, os_user=os_user)
    try:
        cluster.run("initdb", "-D", str(cluster.data_dir), "-U", DB_USER, "-A", "trust", "-E", "UTF8", "--no-sync")
        # A free port can be taken between probing and binding; try a few.
        for attempt in range(3):
            cluster.port = _free_port()
            try:
                cluster.start()
                break
            except PostgresUnavailable:
                if attempt == 2:
                    raise
                time.sleep(0.2)
        cluster.run("createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", DB_USER, DB_NAME)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster for the session."""
    try:
        cluster = start_postgres()
    except PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL unavailable: {exc}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """``postgresql://fhir_module_test@127.0.0.1:PORT/fhir_module_test`` (trust auth, loopback only)."""
    return postgres_cluster.url
