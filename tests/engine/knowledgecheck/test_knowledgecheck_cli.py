"""serve, cards, export and validate share the knowledge check: knowledge that fails it is refused
(exit status 3, each finding named) or reported (validate's "knowledge" layer), and drafts serve
only with --allow-draft."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from fhir_module.cli import main
from fhir_module.engine.knowledgecheck import EXIT_REFUSED
from fhir_module.knowledge import builtin_module_dir

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
REQUEST = EXAMPLES / "requests" / "order-select-renal-moderate.json"


def _bundle(tmp_path: Path, status: str = "retired") -> Path:
    bundle = json.loads((EXAMPLES / "levomilnacipran-r4-collection.json").read_text(encoding="utf-8"))
    for entry in bundle["entry"]:
        if entry["resource"]["id"] == "levomilnacipran-order-sign":
            entry["resource"]["status"] = status
    path = tmp_path / f"{status}.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return path


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, FHIR_MODULE_DATABASE_URL=f"sqlite:///{tmp_path / 'fb.sqlite3'}")
    env.pop("FHIR_MODULE_TRUSTED_CLIENTS", None)
    return subprocess.Popen([sys.executable, "-m", "fhir_module.cli", "serve", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_serve_refuses_a_bundle_that_fails_the_check(tmp_path: Path) -> None:
    process = _serve(tmp_path, "--port", str(_free_port()), "--bundle", str(_bundle(tmp_path)))
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == EXIT_REFUSED == 1
    assert "refusing to serve" in stderr
    assert "PlanDefinition/levomilnacipran-order-sign.status: status is retired" in stderr


def test_serve_allows_a_draft_only_when_told(tmp_path: Path) -> None:
    draft = _bundle(tmp_path, "draft")
    refused = _serve(tmp_path, "--port", str(_free_port()), "--bundle", str(draft))
    assert refused.wait(timeout=60) == EXIT_REFUSED
    port = _free_port()
    process = _serve(tmp_path, "--port", str(port), "--bundle", str(draft), "--allow-draft",
                     "--cases", str(builtin_module_dir("levomilnacipran") / "cases"))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            assert process.poll() is None, process.communicate()
            time.sleep(0.2)
        services = httpx.get(f"http://127.0.0.1:{port}/cds-services", timeout=5).json()["services"]
        assert {s["id"] for s in services} == {"levomilnacipran-order-select", "levomilnacipran-order-sign"}
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_cards_refuses_and_says_why(tmp_path: Path) -> None:
    status, out, err = _run("cards", str(REQUEST), "--bundle", str(_bundle(tmp_path)))
    assert (status, out) == (EXIT_REFUSED, "")
    assert "refusing the knowledge" in err and "levomilnacipran-order-sign.status" in err
    status, _, _ = _run("cards", str(REQUEST), "--bundle", str(_bundle(tmp_path, "draft")), "--allow-draft",
                        "--today", "2026-11-26")
    assert status == 0


def test_export_writes_nothing_that_fails_the_check(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    status, _, err = _run("export", "--bundle", str(_bundle(tmp_path)), "-o", str(out))
    assert status == EXIT_REFUSED and not out.exists()
    assert "nothing was written" in err and "status is retired" in err


def test_export_re_exports_a_bundle_unchanged(tmp_path: Path) -> None:
    source = EXAMPLES / "levomilnacipran-r4-collection.json"
    out = tmp_path / "again.json"
    assert _run("export", "--bundle", str(source), "-o", str(out))[0] == 0
    assert out.read_bytes() == source.read_bytes()
    transaction = tmp_path / "transaction.json"
    assert _run("export", "--bundle", str(source), "--type", "transaction", "-o", str(transaction))[0] == 0
    assert transaction.read_bytes() == (EXAMPLES / "levomilnacipran-r4-transaction.json").read_bytes()


def _outcome(text: str) -> dict[str, Any]:
    return json.loads(text)


def test_validate_reports_the_knowledge_layer_for_a_bundle(tmp_path: Path) -> None:
    status, out, _ = _run("validate", str(_bundle(tmp_path)), "--format", "json")
    assert status == 1
    [issue] = [i for i in _outcome(out)["issue"] if i["severity"] == "error"]
    assert issue["diagnostics"].startswith("[knowledge] PlanDefinition/levomilnacipran-order-sign: status is retired")
    assert issue["expression"][0].startswith("Bundle.entry[") and issue["expression"][0].endswith("].resource.status")
    assert _run("validate", str(_bundle(tmp_path, "draft")), "--allow-draft")[0] == 0


def test_validate_a_package_checks_its_knowledge_as_one(tmp_path: Path) -> None:
    assert _run("export", "--module", str(builtin_module_dir("levomilnacipran")), "--package", str(tmp_path / "out"))[0] == 0
    status, out, _ = _run("validate", str(tmp_path / "out"))
    assert status == 0, out
    valueset = next((tmp_path / "out" / "package").glob("ValueSet-*maoi.json"))
    valueset.unlink()
    status, out, _ = _run("validate", str(tmp_path / "out" / "package"))
    assert status == 1
    assert ("[knowledge] PlanDefinition/levomilnacipran-order-select (action levomilnacipran-order): value set "
            "'http://fhir-module.org/fhir/ValueSet/levomilnacipran-maoi' is not in the knowledge") in out
    assert "Library-levomilnacipran.json: INVALID" in out  # the manifest lists the missing value set
