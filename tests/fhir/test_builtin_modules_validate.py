"""Every built-in module's exports pass `fhir-module validate` with no error and no warning: its R4
collection and transaction bundles, its R5 bundle and its R4 FHIR package, against the base
specification, the module's profiles and the knowledge check, as a module author would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fhir_module.fhir.bundle import build_bundle
from fhir_module.knowledge import builtin_module_dir, builtin_module_dirs, load_knowledge

MODULES = builtin_module_dirs()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fhir_module.cli", *args], capture_output=True, text=True, timeout=300)


def test_every_built_in_module_s_bundles_and_packages_validate_with_no_error(tmp_path: Path) -> None:
    files = []
    for folder in MODULES:
        knowledge = load_knowledge(folder)
        for version, bundle_type in (("R4", "collection"), ("R4", "transaction"), ("R5", "collection")):
            path = tmp_path / f"{folder.name}-{version}-{bundle_type}.json"
            path.write_text(json.dumps(build_bundle(knowledge, version, bundle_type)), encoding="utf-8")
            files.append(path)
    build = _cli("build", *map(str, MODULES), "--fhir-version", "R4", "--package", str(tmp_path / "packages"))
    assert build.returncode == 0, build.stderr
    packages = sorted({path.parent for path in (tmp_path / "packages").rglob("package.json")})
    assert len(packages) == len(MODULES)

    proc = _cli("validate", "--format", "json", *map(str, files), *map(str, packages))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    outcomes = json.loads(proc.stdout)
    assert isinstance(outcomes, list) and len(outcomes) >= len(files) + len(packages)
    problems = [(i["severity"], i.get("expression"), i.get("diagnostics")) for outcome in outcomes
                for i in outcome["issue"] if i["severity"] in ("fatal", "error", "warning")]
    assert problems == []


def test_the_validate_run_above_can_fail(tmp_path: Path) -> None:
    """The same command on the levomilnacipran bundle whose rules lost its condition's value set exits 1, naming it."""
    bundle = build_bundle(load_knowledge(builtin_module_dir("levomilnacipran")), "R4")
    bundle["entry"] = [e for e in bundle["entry"]
                       if not (e["resource"]["resourceType"] == "ValueSet" and e["resource"]["id"].endswith("-maoi"))]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    proc = _cli("validate", str(path))
    assert proc.returncode == 1 and "maoi" in proc.stdout, proc.stdout[-2000:]
