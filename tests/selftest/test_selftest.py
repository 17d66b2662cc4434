"""Modules prove themselves: `fhir-module test` runs a module's own cases and names each failure;
`serve` runs them before it serves and refuses a module whose cases fail."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_module.cli import main
from fhir_module.engine import Engine
from fhir_module.engine.knowledgecheck import EXIT_REFUSED
from fhir_module.knowledge import builtin_module_dir, builtin_module_dirs, case_files
from fhir_module.selftest import CaseResult, load_cases, run_case

MODULE = builtin_module_dir("levomilnacipran")
CASES = MODULE / "cases"
TODAY = date.today()


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def _exported(tmp_path: Path) -> dict[str, Any]:
    """The levomilnacipran module's bundle (its cases are CASES)."""
    path = tmp_path / "knowledge.json"
    assert _run("export", "--module", str(MODULE), "-o", str(path))[0] == 0
    return json.loads(path.read_text(encoding="utf-8"))


def _with_maximum(bundle: dict[str, Any], limit: int, tmp_path: Path) -> Path:
    """The bundle with rule D1's maximum daily dose edited (120 mg in the monograph)."""
    edited = 0
    for entry in bundle["entry"]:
        stack = list(entry["resource"].get("action", [])) if entry["resource"]["resourceType"] == "PlanDefinition" else []
        while stack:
            action = stack.pop()
            stack += action.get("action", [])
            if action.get("id") == "D1":
                for extension in action["extension"]:
                    if extension.get("valueExpression", {}).get("name") == "limit":
                        extension["valueExpression"]["expression"] = str(limit)
                        edited += 1
    assert edited == 2  # order-select and order-sign
    path = tmp_path / f"maximum-{limit}.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return path


def test_the_built_in_modules_pass_their_own_cases() -> None:
    status, out, err = _run("test")
    assert status == 0, out + err
    lines = out.splitlines()
    total = sum(len(case_files(folder)) for folder in builtin_module_dirs())
    assert lines[-1] == f"{total} case(s): {total} passed, 0 failed"
    assert len([line for line in lines if line.startswith("PASS  ")]) == total
    assert "PASS  pub-max-dose" in lines


def test_an_edited_threshold_fails_the_cases_it_contradicts_by_name(tmp_path: Path) -> None:
    edited = _with_maximum(_exported(tmp_path), 100, tmp_path)
    status, out, _ = _run("test", "--bundle", str(edited), "--cases", str(CASES), "--quiet")
    assert status == 1
    failures = [line for line in out.splitlines() if line.startswith("FAIL  ")]
    assert failures and not any(line.startswith("PASS") for line in out.splitlines())
    pub = next(line for line in failures if line.startswith("FAIL  pub-max-dose "))
    assert str(CASES / "public" / "pub-max-dose.json") in pub
    assert "suggestion 'update MedicationRequest/pub-max-dose-draft to 120 mg/day' not found" in pub
    assert any("unexpected card dose-limit/warning: 'Levomilnacipran 120 mg/day exceeds the 100 mg/day maximum"
               in line for line in failures)  # a dose the cases hold to be fine now fires
    assert out.splitlines()[-1].endswith(f"{len(failures)} failed")
    # The same bundle, untouched, passes the same cases.
    untouched = _with_maximum(_exported(tmp_path), 120, tmp_path)
    assert _run("test", "--bundle", str(untouched), "--cases", str(CASES), "-q")[0] == 0


def test_a_package_carries_its_cases_and_proves_itself(tmp_path: Path) -> None:
    assert _run("export", "--module", str(MODULE), "--package", str(tmp_path / "out"))[0] == 0
    copied = sorted(p.relative_to(tmp_path / "out" / "package" / "tests") for p in
                    (tmp_path / "out" / "package" / "tests").rglob("*.json"))
    assert copied == [p.relative_to(CASES) for p in case_files(MODULE)]
    status, out, _ = _run("test", "--package", str(tmp_path / "out"), "-q")
    assert status == 0 and out.splitlines()[-1].endswith("0 failed")
    assert _run("export", "--module", str(MODULE), "--package", str(tmp_path / "out"))[0] == 0  # replaces itself


def test_a_module_folder_anywhere_brings_its_cases(tmp_path: Path) -> None:
    copy = tmp_path / "module"
    shutil.copytree(MODULE, copy)
    assert _run("test", "--module", str(copy), "-q")[0] == 0
    case = copy / "cases" / "public" / "pub-max-dose.json"
    data = json.loads(case.read_text(encoding="utf-8"))
    data["expect"]["cards"] = [card for card in data["expect"]["cards"] if card["topic"] != "dose-limit"]
    case.write_text(json.dumps(data), encoding="utf-8")
    status, out, _ = _run("test", "--module", str(copy), "-q")
    assert status == 1 and "FAIL  pub-max-dose" in out and "unexpected card dose-limit/warning" in out


def test_nothing_to_run_or_refused_knowledge(tmp_path: Path) -> None:
    bundle = tmp_path / "knowledge.json"
    bundle.write_text(json.dumps(_exported(tmp_path)), encoding="utf-8")
    status, _, err = _run("test", "--bundle", str(bundle))
    assert status == 2 and "no test cases to run" in err
    retired = _exported(tmp_path)
    next(e for e in retired["entry"] if e["resource"]["resourceType"] == "PlanDefinition")["resource"]["status"] = "retired"
    bundle.write_text(json.dumps(retired), encoding="utf-8")
    status, _, err = _run("test", "--bundle", str(bundle), "--cases", str(CASES))
    assert status == EXIT_REFUSED and "status is retired" in err


def test_a_refused_request_is_a_failed_case() -> None:
    [case] = load_cases([CASES / "public" / "pub-max-dose.json"], TODAY)
    case.selections = ["MedicationRequest/not-among-the-drafts"]
    result = run_case(Engine.default(), case, TODAY)
    assert isinstance(result, CaseResult) and not result.passed
    assert "refused the request (400)" in result.problems[0]


# -- serve ------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    env = dict(os.environ, FHIR_MODULE_DATABASE_URL=f"sqlite:///{tmp_path / 'fb.sqlite3'}")
    env.pop("FHIR_MODULE_TRUSTED_CLIENTS", None)
    process = subprocess.Popen([sys.executable, "-m", "fhir_module.cli", "serve", "--port", str(port), *args],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, f"http://127.0.0.1:{port}"


def _until_healthy(process: subprocess.Popen[str], base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        assert process.poll() is None, process.communicate()
        time.sleep(0.2)
    raise AssertionError("serve did not become healthy")


def test_serve_refuses_knowledge_whose_cases_fail(tmp_path: Path) -> None:
    edited = _with_maximum(_exported(tmp_path), 100, tmp_path)
    process, _ = _serve(tmp_path, "--bundle", str(edited), "--cases", str(CASES))
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == EXIT_REFUSED
    assert "refusing to serve: the modules' own test cases fail" in stderr and "FAIL  pub-max-dose" in stderr

    process, _ = _serve(tmp_path, "--bundle", str(edited))
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == EXIT_REFUSED and "a bundle carries no test cases" in stderr


def test_serve_self_tests_the_built_in_modules_and_an_expert_may_skip_it_loudly(tmp_path: Path) -> None:
    process, base = _serve(tmp_path)
    try:
        _until_healthy(process, base)
    finally:
        process.terminate()
        stdout, _ = process.communicate(timeout=20)
    total = sum(len(case_files(folder)) for folder in builtin_module_dirs())
    assert f"self-test passed: {total} case(s)" in stdout

    edited = _with_maximum(_exported(tmp_path), 100, tmp_path)
    process, base = _serve(tmp_path, "--bundle", str(edited), "--skip-self-test")
    try:
        _until_healthy(process, base)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    assert "SELF-TEST SKIPPED (--skip-self-test)" in stderr
