"""The module's profiles: generated snapshots match their sources, cover the module's artifacts, and
the package copy is the published one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_module.fhir import canonical

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "profiles" / "src"
SNAPSHOTS = ROOT / "profiles" / "snapshots"
PACKAGE_COPY = ROOT / "fhir_module" / "data" / "definitions" / "profiles"
SOURCE_FILES = sorted(p.name for p in SOURCES.glob("*.json"))


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", [n for n in SOURCE_FILES if n.startswith("StructureDefinition-")])
def test_snapshot_holds_every_differential_element(name: str) -> None:
    source, built = _json(SOURCES / name), _json(SNAPSHOTS / name)
    assert built["url"] == source["url"] and built["differential"] == source["differential"]
    snapshot = {e["id"]: e for e in built["snapshot"]["element"]}
    assert len(snapshot) == len(built["snapshot"]["element"]), "duplicate element ids"
    for diff in source["differential"]["element"]:
        element = snapshot.get(diff["id"])
        assert element is not None, diff["id"]
        for key, value in diff.items():
            if key == "constraint":  # the snapshot adds the base invariants to the profile's own
                assert all(c in element["constraint"] for c in value), diff["id"]
            else:
                assert element[key] == value, (diff["id"], key)
    assert len(snapshot) > len(source["differential"]["element"])  # the base elements are there too


def test_every_source_is_built_and_copied_into_the_package() -> None:
    assert sorted(p.name for p in SNAPSHOTS.glob("*.json")) == SOURCE_FILES
    for name in SOURCE_FILES:
        assert (PACKAGE_COPY / name).read_bytes() == (SNAPSHOTS / name).read_bytes(), name


def test_each_r4_artifact_profile_of_canonical_py_exists() -> None:
    urls = {_json(SNAPSHOTS / n)["url"] for n in SOURCE_FILES}
    for url in (canonical.PROFILE_MEDICATION_KNOWLEDGE, canonical.PROFILE_PLAN_DEFINITION, canonical.PROFILE_ACTIVITY_DEFINITION,
                canonical.PROFILE_VALUE_SET, canonical.PROFILE_CODE_SYSTEM, canonical.PROFILE_LIBRARY,
                canonical.PROFILE_DOCUMENT_REFERENCE, canonical.EXT_CARD_TEMPLATE, canonical.EXT_CARD_NOTE, canonical.EXT_FOR_EACH,
                canonical.EXT_MONOGRAPH_QUOTE, canonical.EXT_RECOGNITION_NAME):
        assert url in urls, url


def test_snapshots_are_r4_and_carry_no_generator_bookkeeping() -> None:
    for name in SOURCE_FILES:
        text = (SNAPSHOTS / name).read_text(encoding="utf-8")
        assert "__" not in "".join(_json(SNAPSHOTS / name).keys())
        if name.startswith("StructureDefinition-"):
            assert '"fhirVersion": "4.0.1"' in text
