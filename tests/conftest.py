"""Shared test setup: registers the fixtures for the real outside systems (tests/support/).

Fixtures (all session-scoped): ``fhir_server`` (a real FHIR R4 server), ``jwt_client`` and
``jwt_client_factory`` (CDS clients signing JWTs, JWKS over HTTP), ``postgres_cluster`` and
``postgres_url`` (a throwaway PostgreSQL). A missing outside system fails the test, it never skips.
"""

import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

# Property tests are reproducible by default: CI and every developer run the same examples (derived
# from each test's name), so a red run is a real regression, not a new random draw. To explore
# (more examples, a fresh random draw each time, failures remembered in .hypothesis/), run
# `HYPOTHESIS_PROFILE=explore python -m pytest ...`.
settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", max_examples=1000, suppress_health_check=[HealthCheck.too_slow],
                          print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# `tests.support.*` must be importable however pytest is started (`pytest`, `python -m pytest`, a path).
_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

pytest_plugins = [
    "tests.support.fhir_server",
    "tests.support.jwt_clients",
    "tests.support.postgres",
]
