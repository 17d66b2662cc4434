"""Shared test setup: registers the fixtures for the real outside systems (tests/support/).

Fixtures (all session-scoped): ``fhir_server`` (a real FHIR R4 server), ``jwt_client`` and
``jwt_client_factory`` (CDS clients signing JWTs, JWKS over HTTP), ``postgres_cluster`` and
``postgres_url`` (a throwaway PostgreSQL). A missing outside system fails the test, it never skips.
"""

import sys
from pathlib import Path

# `tests.support.*` must be importable however pytest is started (`pytest`, `python -m pytest`, a path).
_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

pytest_plugins = [
    "tests.support.fhir_server",
    "tests.support.jwt_clients",
    "tests.support.postgres",
]
