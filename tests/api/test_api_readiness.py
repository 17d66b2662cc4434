"""`/readyz` tells the truth: 503 while the database is unreachable (PostgreSQL, real), 200
"degraded" naming the FHIR server that fails, "ready" otherwise; `/healthz` stays liveness."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.api.helpers import free_port, post, scenario_request
from tests.support.postgres import DB_USER, PostgresCluster


def test_ready_with_nothing_wrong(base_url: str, engine: Any) -> None:
    response = httpx.get(f"{base_url}/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"knowledge": {"status": "ok", "services": len(engine.services())},
                   "database": {"status": "ok", "kind": "sqlite"}, "fhirServers": {}},
    }


def test_not_ready_while_postgresql_is_down(live: Any, postgres_cluster: PostgresCluster) -> None:
    name = f"readiness_{uuid.uuid4().hex[:8]}"
    where = ("-h", "127.0.0.1", "-p", str(postgres_cluster.port), "-U", DB_USER)
    postgres_cluster.run("createdb", *where, name)
    url = postgres_cluster.url.rsplit("/", 1)[0] + f"/{name}"
    with live(database_url=url) as base:
        assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
        postgres_cluster.run("dropdb", *where, name)  # the database is gone: feedback cannot be stored
        try:
            down = httpx.get(f"{base}/readyz", timeout=30)
            assert down.status_code == 503, down.text
            assert down.json()["status"] == "not ready"
            assert down.json()["checks"]["database"]["status"] == "down"
            assert down.json()["checks"]["database"]["kind"] == "postgresql"
            assert httpx.get(f"{base}/healthz").status_code == 200  # alive, not ready
        finally:
            postgres_cluster.run("createdb", *where, name)
        assert httpx.get(f"{base}/readyz").status_code == 200


def test_degraded_names_the_failing_fhir_server(live: Any, discovery: dict[str, Any]) -> None:
    dead = f"http://127.0.0.1:{free_port()}/fhir"  # nobody listens: every fetch fails
    service_id, bare = scenario_request("pub-clean", discovery, fhir_server=dead, prefetch=False)
    with live(allowed_fhir_servers=(dead,)) as base:
        assert httpx.get(f"{base}/readyz").json()["checks"]["fhirServers"][dead]["status"] == "ok"
        assert post(f"{base}/cds-services/{service_id}", bare).status_code == 412
        response = httpx.get(f"{base}/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    lane = body["checks"]["fhirServers"][dead]
    assert lane["status"] == "failing" and lane["consecutiveFailures"] >= 3
    assert "ConnectError" in lane["lastProblem"] and lane["inFlight"] == 0


def test_not_ready_while_the_postgresql_server_is_stopped(live: Any, jwt_client: Any, tmp_path: Any) -> None:
    """The server itself stopped (a cluster of this test's own, not the session's): readiness is 503
    at once, calls needing the database are 503 (never a false ok), and all is well once it is back."""
    from fhir_module.config import load_trusted_clients
    from tests.support.jwt_clients import write_trusted_clients
    from tests.support.postgres import start_postgres

    cluster = start_postgres()
    trusted = load_trusted_clients(str(write_trusted_clients(tmp_path / "c.json", [jwt_client])))
    try:
        with live(database_url=cluster.url, trusted_clients=trusted) as base:
            call = f"{base}/cds-services"
            assert httpx.get(call, headers=jwt_client.authorization(call)).status_code == 200
            cluster.run("pg_ctl", "-D", str(cluster.data_dir), "-m", "fast", "-w", "stop")
            try:
                down = httpx.get(f"{base}/readyz", timeout=30)
                assert down.status_code == 503, down.text
                assert down.json()["checks"]["database"] == {"status": "down", "kind": "postgresql",
                                                             "problem": "OperationalError"}
                assert httpx.get(f"{base}/healthz").status_code == 200
                refused = httpx.get(call, headers=jwt_client.authorization(call), timeout=30)
                assert refused.status_code == 503 and refused.json()["issue"][0]["code"] == "transient"
            finally:
                cluster.start()
            assert httpx.get(f"{base}/readyz", timeout=30).json()["status"] == "ready"
            assert httpx.get(call, headers=jwt_client.authorization(call), timeout=30).status_code == 200
    finally:
        cluster.stop()
