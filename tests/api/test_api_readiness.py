"""`/readyz` tells the truth: 503 while the database is unreachable (PostgreSQL, real), 200
"degraded" naming the FHIR server that fails, "ready" otherwise; `/healthz` stays liveness."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path
from typing import Any

import httpx

from fhir_module.api import create_app
from fhir_module.api.fetch import FhirSource
from fhir_module.config import Settings
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


def test_not_ready_while_a_fetch_slot_is_held_past_every_deadline(engine: Any, tmp_path: Path) -> None:
    """The issue's "fetching is broken" (once, leaked pool slots: every fetch timed out until restart
    while /healthz said ok) can only come from a fault of ours now: each fetch gives its slot back by
    its deadline. Such a fault is played by a fetch through the lane with a deadline far past the
    service's (the lane's own API, a server that never answers): once its slot is held longer than
    any fetch of the service could hold it, readiness is 503 naming the lane "stuck"; when it is
    given back, ready again."""
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        server = f"http://127.0.0.1:{silent.getsockname()[1]}/fhir"
        timeout = 0.05
        app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'f.sqlite3'}", allowed_fhir_servers=(server,),
                                  fetch_timeout=timeout), engine)

        async def scenario() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
            lane = app.state.fhir_servers.lane(FhirSource(server, None))
            held = asyncio.create_task(lane.get(f"{server}/Patient/x", {}, timeout=60))
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
                await asyncio.sleep(0.5)
                busy = await client.get("/readyz")  # held, but not past what a fetch may take yet
                await asyncio.sleep(2 * timeout + 5)
                stuck = await client.get("/readyz")
                held.cancel()
                await asyncio.gather(held, return_exceptions=True)
                after = await client.get("/readyz")
            await app.state.fhir_servers.aclose()
            return busy, stuck, after

        busy, stuck, after = asyncio.run(scenario())
    assert busy.status_code == 200 and busy.json()["checks"]["fhirServers"][server]["status"] == "ok", busy.json()
    assert stuck.status_code == 503 and stuck.json()["status"] == "not ready", stuck.json()
    assert stuck.json()["checks"]["fhirServers"][server] == {**stuck.json()["checks"]["fhirServers"][server],
                                                           "status": "stuck", "inFlight": 1}
    assert after.status_code == 200 and after.json()["checks"]["fhirServers"][server]["inFlight"] == 0
