"""The `fhir-module` command as a whole: version, and one meaning per exit status in every help."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fhir_module.cli", *args], capture_output=True, text=True, timeout=120)


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"fhir-module {version('fhir-module')}"


@pytest.mark.parametrize("command", [[], ["serve"], ["export"], ["build"], ["validate"], ["cards"]])
def test_every_help_states_the_exit_status(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "0 done, nothing wrong found" in text
    assert "1 findings:" in text and "2 usage:" in text


def test_bad_usage_is_2() -> None:
    assert run().returncode == 2
    assert run("no-such-command").returncode == 2
    assert run("export", "--fhir-version", "R9").returncode == 2




@pytest.mark.parametrize("command", ["export", "validate"])
def test_a_reader_that_left_ends_the_command_quietly(command: str, tmp_path) -> None:
    """`fhir-module ... | head -1` where head has gone: no BrokenPipeError traceback, and the status of a
    tool killed by SIGPIPE (141)."""
    bundle = tmp_path / "bundle.json"
    assert run("export", "-o", str(bundle)).returncode == 0
    args = ["export"] if command == "export" else ["validate", str(bundle)]
    process = subprocess.Popen([sys.executable, "-m", "fhir_module.cli", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # gone before the command writes a byte (it is still starting up)
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
