"""Fixtures of the FHIR export tests (helpers live in fhir_checks.py)."""

from __future__ import annotations

from typing import Any

import pytest
from fhir_checks import knowledge

from fhir_module.fhir.bundle import build_bundle
from fhir_module.knowledge import Knowledge


@pytest.fixture(scope="session")
def k() -> Knowledge:
    return knowledge()


@pytest.fixture(scope="session")
def r4_bundle() -> dict[str, Any]:
    return build_bundle(knowledge(), "R4", "collection")


@pytest.fixture(scope="session")
def r5_bundle() -> dict[str, Any]:
    return build_bundle(knowledge(), "R5", "collection")
