"""`fhir-module export` as users run it (a subprocess), and the FHIR package layout it writes."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from fhir_checks import exported, knowledge

from fhir_module.fhir.bundle import build_bundle, dumps
from fhir_module.fhir.export import export_command
from fhir_module.fhir.package import PackageError, conformance_resources, write_package
from fhir_module.knowledge import builtin_module_dir

# The console script pip installed beside the running interpreter (the command users type).
FHIR_MODULE = Path(shutil.which("fhir-module", path=str(Path(sys.executable).parent)) or
                   Path(sys.executable).parent / "fhir-module")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    assert FHIR_MODULE.exists(), f"{FHIR_MODULE} is not installed (pip install -e .)"
    # The levomilnacipran module (export alone writes every built-in module).
    module = ["--module", str(builtin_module_dir("levomilnacipran"))]
    return subprocess.run([str(FHIR_MODULE), "export", *module, *args], capture_output=True, text=True, timeout=300)


def test_stdout_and_file_are_the_same_bundle(tmp_path):
    out = tmp_path / "r4.json"
    to_stdout = run("--fhir-version", "R4")
    to_file = run("--fhir-version", "R4", "--type", "collection", "-o", str(out))
    assert to_stdout.returncode == 0 and to_file.returncode == 0, to_stdout.stderr + to_file.stderr
    assert to_stdout.stdout == out.read_text("utf-8") == dumps(build_bundle(knowledge(), "R4", "collection"))
    assert json.loads(to_stdout.stdout)["type"] == "collection"


def test_r5_transaction(tmp_path):
    out = tmp_path / "r5.json"
    proc = run("--fhir-version", "R5", "--type", "transaction", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    bundle = json.loads(out.read_text("utf-8"))
    assert bundle["type"] == "transaction"
    assert any(e["resource"]["resourceType"] == "ClinicalUseDefinition" for e in bundle["entry"])
    assert all(e["request"]["method"] == "PUT" for e in bundle["entry"])


def test_bad_arguments_and_unwritable_output(tmp_path):
    proc = run("--fhir-version", "R6")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr and proc.stdout == ""
    proc = run("-o", str(tmp_path / "missing-folder" / "x.json"))
    assert proc.returncode == 2 and "cannot write" in proc.stderr and "Traceback" not in proc.stderr


def test_invalid_knowledge_exits_1_with_its_message(tmp_path, capsys):
    shutil.copytree(builtin_module_dir("levomilnacipran"), tmp_path / "module")
    broken = tmp_path / "module" / "knowledge.yaml"
    broken.write_text(broken.read_text("utf-8").replace(
        "up to a maximum of 120 mg once daily", "up to a maximum of 150 mg once daily"), encoding="utf-8")
    args = argparse.Namespace(fhir_version="R4", type="collection", output=str(tmp_path / "out.json"),
                              package=None, module=[str(broken.parent)])
    assert export_command(args) == 1
    err = capsys.readouterr().err
    assert "invalid knowledge" in err and "not in the monograph" in err
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_package_layout(tmp_path, version):
    proc = run("--fhir-version", version, "--package", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "package"
    manifest = json.loads((folder / "package.json").read_text("utf-8"))
    fhir_version = {"R4": "4.0.1", "R5": "5.0.0"}[version]
    assert manifest["name"] == f"fhir-module.{knowledge().module['id']}.{version.lower()}"
    assert manifest["version"] == knowledge().module["version"]
    assert manifest["fhirVersions"] == [fhir_version]
    assert manifest["dependencies"] == {f"hl7.fhir.{version.lower()}.core": fhir_version}
    assert manifest["canonical"] == "http://fhir-module.org/fhir"

    index = json.loads((folder / ".index.json").read_text("utf-8"))
    assert index["index-version"] == 2
    resources = sorted([*exported(version), *conformance_resources(version)],
                       key=lambda r: (r["resourceType"], r["id"]))
    assert [f["filename"] for f in index["files"]] == [f"{r['resourceType']}-{r['id']}.json" for r in resources]
    written = sorted(p.name for p in folder.iterdir())
    # Besides its resources, the package holds the module's own test cases (tests/, as in cases/).
    assert written == sorted([".index.json", "package.json", "tests", *(f["filename"] for f in index["files"])])
    for entry, resource in zip(index["files"], resources, strict=True):
        assert json.loads((folder / entry["filename"]).read_text("utf-8")) == resource
        assert entry["resourceType"] == resource["resourceType"] and entry["id"] == resource["id"]
        assert entry.get("url") == resource.get("url") and entry.get("version") == resource.get("version")
    # Every profile an artifact declares is in the R4 package; R5 artifacts declare none (the
    # profiles are R4) and the R5 package carries none.
    declared = {p for r in exported(version) for p in r.get("meta", {}).get("profile", [])}
    packaged = {f["url"] for f in index["files"] if f["resourceType"] == "StructureDefinition"}
    if version == "R4":
        assert declared and declared <= packaged, declared - packaged
        assert all(f["kind"] and f["type"] for f in index["files"] if f["resourceType"] == "StructureDefinition")
    else:
        assert declared == set() and packaged == set()
    # The same package as a tarball, `package/...` inside, beside the folder.
    tarball = tmp_path / f"{manifest['name']}-{manifest['version']}.tgz"
    with tarfile.open(tarball) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    assert members == {f"package/{p.relative_to(folder).as_posix()}": p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    again = tmp_path / "again"
    assert run("--fhir-version", version, "--package", str(again)).returncode == 0
    assert (again / tarball.name).read_bytes() == tarball.read_bytes()  # byte-identical


def test_package_replaces_an_earlier_export_but_not_other_files(tmp_path):
    k = knowledge()
    folder = write_package(k, "R5", tmp_path)
    stale = folder / "ValueSet-stale.json"
    stale.write_text("{}", encoding="utf-8")
    write_package(k, "R4", tmp_path)  # an earlier export of ours: replaced whole
    assert not stale.exists() and not list(folder.glob("ClinicalUseDefinition-*.json"))

    other = tmp_path / "other"
    (other / "package").mkdir(parents=True)
    (other / "package" / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(PackageError, match="not empty"):
        write_package(k, "R4", other)
    assert (other / "package" / "notes.txt").read_text("utf-8") == "keep me"
    proc = run("--package", str(other))
    assert proc.returncode == 2 and "not empty" in proc.stderr
