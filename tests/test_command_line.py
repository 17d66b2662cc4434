"""The `fhir-module` command as a whole: version, and one meaning per exit status in every help."""

from __future__ import annotations

import os
import shutil
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


def _module_copy(tmp_path, edit) -> str:
    from fhir_module.knowledge import builtin_module_dir

    folder = shutil.copytree(builtin_module_dir("levomilnacipran"), tmp_path / "module")
    edit(folder)
    return str(folder)


def _overstated_maximum(folder) -> None:  # a quote the monograph does not hold: the knowledge fails its checks
    path = folder / "knowledge.yaml"
    path.write_text(path.read_text("utf-8").replace(
        "up to a maximum of 120 mg once daily", "up to a maximum of 150 mg once daily"), encoding="utf-8")


def _not_yaml(folder) -> None:  # nothing to check: the file is not YAML at all
    (folder / "knowledge.yaml").write_text("module: [unclosed\n", encoding="utf-8")


@pytest.mark.parametrize("command", [["cards", "{request}"], ["test"], ["export", "-o", "{out}"],
                                     ["serve", "--port", "0"]])
@pytest.mark.parametrize(("edit", "status", "said"), [(_overstated_maximum, 1, "not in the monograph"),
                                                      (_not_yaml, 2, "not valid YAML")])
def test_knowledge_that_fails_its_checks_is_1_and_an_unreadable_file_2_in_every_command(
        tmp_path, command: list[str], edit, status: int, said: str) -> None:
    module = _module_copy(tmp_path, edit)
    request = tmp_path / "request.json"
    request.write_text('{"hook": "order-select", "hookInstance": "x", "context": {}}', encoding="utf-8")
    args = [a.format(request=request, out=tmp_path / "out.json") for a in command]
    env = {**os.environ, "FHIR_MODULE_DATABASE_URL": f"sqlite:///{tmp_path / 'f.sqlite3'}"}
    result = subprocess.run([sys.executable, "-m", "fhir_module.cli", *args, "--module", module],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == status, result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out.json").exists()
