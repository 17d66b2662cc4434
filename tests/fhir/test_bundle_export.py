"""Bundles, the manifest Library and determinism: sorted, stable, byte-identical whatever the date."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from fhir_checks import VERSIONS, exported, knowledge

from fhir_module.fhir.bundle import build_bundle, build_resources, conformance_resources, dumps
from fhir_module.fhir.canonical import BASE
from fhir_module.knowledge import builtin_module_dir


@pytest.mark.parametrize("version", VERSIONS)
def test_every_artifact_type_is_exported(version):
    types = {r["resourceType"] for r in exported(version)}
    expected = {"PlanDefinition", "ActivityDefinition", "ValueSet", "CodeSystem", "Library",
                "MedicationKnowledge", "DocumentReference"}
    assert expected <= types
    assert ("ClinicalUseDefinition" in types) == (version == "R5")


@pytest.mark.parametrize("version", VERSIONS)
def test_resources_sorted_and_unique(version):
    keys = [(r["resourceType"], r["id"]) for r in exported(version)]
    assert keys == sorted(keys) and len(keys) == len(set(keys))


@pytest.mark.parametrize("version", VERSIONS)
def test_library_lists_every_other_artifact(version):
    resources = exported(version)
    [library] = [r for r in resources if r["resourceType"] == "Library"]
    assert library["type"]["coding"][0]["code"] == "asset-collection"
    assert library["url"] == f"{BASE}/Library/{library['id']}"
    listed = [a["resource"] for a in library["relatedArtifact"]]
    assert all(a["type"] == "composed-of" for a in library["relatedArtifact"])
    expected = [f"{r['url']}|{r['version']}" if "url" in r else f"{BASE}/{r['resourceType']}/{r['id']}"
                for r in resources if r is not library]
    assert listed == expected


@pytest.mark.parametrize("version", VERSIONS)
def test_collection_and_transaction_entries(version):
    k = knowledge()
    collection = build_bundle(k, version, "collection")
    transaction = build_bundle(k, version, "transaction")
    assert collection["type"] == "collection" and transaction["type"] == "transaction"
    assert "timestamp" not in collection and "meta" not in collection
    # The transaction also carries the profiles the artifacts claim (R4), for a server to validate them.
    profiles = {(r["resourceType"], r["id"]) for r in conformance_resources(version)}
    assert bool(profiles) == (version == "R4")
    artifacts = [e for e in transaction["entry"] if (e["resource"]["resourceType"], e["resource"]["id"]) not in profiles]
    assert len(transaction["entry"]) == len(artifacts) + len(profiles)
    for c_entry, t_entry in zip(collection["entry"], artifacts, strict=True):
        resource = c_entry["resource"]
        assert c_entry["fullUrl"] == resource.get("url", f"{BASE}/{resource['resourceType']}/{resource['id']}")
        assert "request" not in c_entry
        assert t_entry["request"] == {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
        assert t_entry["resource"] == resource


def test_bad_arguments_are_refused_clearly():
    k = knowledge()
    with pytest.raises(ValueError, match="bundle type 'batch'"):
        build_bundle(k, "R4", "batch")
    with pytest.raises(ValueError, match="FHIR version 'R6'"):
        build_resources(k, "R6")


def test_two_builds_are_byte_identical():
    k = knowledge()
    for version in VERSIONS:
        assert dumps(build_bundle(k, version, "transaction")) == dumps(build_bundle(k, version, "transaction"))


# Moves the process clock years ahead (time, datetime, date) before the export runs.
_SHIFTED_CLOCK = """
import datetime as _dt, sys, time as _time
_SHIFT = _dt.timedelta(days=3653)
class _DateTime(_dt.datetime):
    @classmethod
    def now(cls, tz=None): return super().now(tz) + _SHIFT
    @classmethod
    def utcnow(cls): return super().utcnow() + _SHIFT
    @classmethod
    def today(cls): return super().today() + _SHIFT
class _Date(_dt.date):
    @classmethod
    def today(cls): return super().today() + _SHIFT
_real_time, _real_gmtime, _real_localtime = _time.time, _time.gmtime, _time.localtime
_dt.datetime, _dt.date = _DateTime, _Date
_time.time = lambda: _real_time() + _SHIFT.total_seconds()
_time.gmtime = lambda s=None: _real_gmtime(_time.time() if s is None else s)
_time.localtime = lambda s=None: _real_localtime(_time.time() if s is None else s)
assert _dt.date.today().year >= _Date.fromtimestamp(_real_time()).year + 9
from fhir_module.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("version", VERSIONS)
def test_export_does_not_depend_on_the_date(tmp_path, version):
    out = tmp_path / "shifted.json"
    args = ["export", "--module", str(builtin_module_dir("levomilnacipran")), "--fhir-version", version,
            "--type", "transaction", "-o", str(out)]
    proc = subprocess.run([sys.executable, "-c", _SHIFTED_CLOCK, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text("utf-8") == dumps(build_bundle(knowledge(), version, "transaction"))


def _export(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fhir_module.cli", "export", *args], capture_output=True, text=True,
                          timeout=300)


def test_one_export_writes_each_version_as_its_own_export_does(tmp_path):
    both = _export("--fhir-version", "R4", "--fhir-version", "R5", "-o", str(tmp_path / "knowledge-{version}.json"))
    assert both.returncode == 0, both.stderr
    for version in VERSIONS:
        alone = tmp_path / f"alone-{version}.json"
        assert _export("--fhir-version", version, "-o", str(alone)).returncode == 0
        assert (tmp_path / f"knowledge-{version}.json").read_bytes() == alone.read_bytes()


@pytest.mark.parametrize("output", [[], ["-o", "knowledge.json"], ["--package", "out"]])
def test_several_versions_need_a_file_name_for_each(tmp_path, output):
    args = [str(tmp_path / part) if part != "-o" and part != "--package" else part for part in output]
    proc = _export("--fhir-version", "R4", "--fhir-version", "R5", *args)
    assert proc.returncode == 2 and "{version}" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_refused_knowledge_writes_no_version(tmp_path):
    module = tmp_path / "module"
    shutil.copytree(builtin_module_dir("levomilnacipran"), module)
    knowledge_file = module / "knowledge.yaml"
    # A field the knowledge schema does not have: the module is refused before any version is built.
    knowledge_file.write_text(knowledge_file.read_text("utf-8").replace("order_kinds:", "order_kinds_misspelt:", 1),
                              encoding="utf-8")
    proc = _export("--module", str(module), "--fhir-version", "R4", "--fhir-version", "R5",
                   "-o", str(tmp_path / "knowledge-{version}.json"))
    assert proc.returncode == 1, proc.stderr
    assert not list(tmp_path.glob("knowledge-*.json"))
