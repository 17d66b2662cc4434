"""The committed example bundles are exactly what the exporter writes today (they never go stale)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fhir_checks import knowledge

from fhir_module.fhir.bundle import build_bundle, dumps

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CASES = [("R4", "collection"), ("R4", "transaction"), ("R5", "collection")]


@pytest.mark.parametrize(("version", "bundle_type"), CASES)
def test_example_equals_a_fresh_export(version, bundle_type):
    path = EXAMPLES / f"{knowledge().module['id']}-{version.lower()}-{bundle_type}.json"
    assert path.is_file(), f"{path} is missing: see examples/README.md"
    fresh = dumps(build_bundle(knowledge(), version, bundle_type))
    assert path.read_text("utf-8") == fresh, f"{path.name} is stale: regenerate it (examples/README.md)"
