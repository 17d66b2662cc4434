"""Fixtures for the HTTP service tests (helpers live in tests/api/helpers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from fhir_module.api import create_app
from fhir_module.config import Settings
from tests.api.helpers import FhirJsonServer, make_engine, serve_app


@pytest.fixture(scope="session")
def engine() -> Any:
    return make_engine()


@pytest.fixture(scope="session")
def discovery(engine: Any) -> dict[str, Any]:
    return {"services": engine.services()}


@pytest.fixture
def tmp_db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'feedback.sqlite3'}"


@pytest.fixture
def live(engine: Any, tmp_db: str) -> Callable[..., Any]:
    """`live(**settings)` -> context manager yielding the base URL of a freshly built app."""

    @contextmanager
    def start(**overrides: Any) -> Iterator[str]:
        overrides.setdefault("database_url", tmp_db)
        app = create_app(Settings(**overrides), engine)
        with serve_app(app) as url:
            yield url

    return start


@pytest.fixture
def base_url(live: Callable[..., Any]) -> Iterator[str]:
    """The service with default settings (no auth, no allowed FHIR servers)."""
    with live() as url:
        yield url


@pytest.fixture
def fhir_json_server() -> Iterator[FhirJsonServer]:
    server = FhirJsonServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
