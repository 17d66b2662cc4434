"""Several workers and instances: JWT replay protection and secrets live in the database, so a
token is accepted once whichever worker or instance sees it, and still refused after a restart
(once a used token was accepted again after a restart, by a second instance, and once per worker
under `uvicorn --workers 4`). Real processes, real PostgreSQL, real signed JWTs."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_module.feedback import store_from_url
from tests.api.helpers import free_port, running_service, scenario_request
from tests.support.jwt_clients import JwtClient, write_trusted_clients
from tests.support.postgres import DB_USER, PostgresCluster

PUBLIC = "https://cds.example.org/hooks"  # both instances behind one address, as behind a proxy


def service_env(tmp_path: Path, jwt_client: JwtClient, database_url: str) -> dict[str, str]:
    clients = write_trusted_clients(tmp_path / "clients.json", [jwt_client])
    return {**os.environ, "FHIR_MODULE_TRUSTED_CLIENTS": str(clients), "FHIR_MODULE_DATABASE_URL": database_url,
            "FHIR_MODULE_PUBLIC_BASE_URL": PUBLIC}


def serve(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "fhir_module.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *extra]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_claim_jti(kind: str, tmp_path: Path, postgres_url: str) -> None:
    store = store_from_url(postgres_url if kind == "postgresql" else f"sqlite:///{tmp_path / 'f.sqlite3'}")
    other = store_from_url(postgres_url if kind == "postgresql" else f"sqlite:///{tmp_path / 'f.sqlite3'}")
    try:
        now, jti = time.time(), uuid.uuid4().hex
        assert store.claim_jti("iss-a", jti, now + 60, now) is True
        assert store.claim_jti("iss-a", jti, now + 60, now) is False
        assert other.claim_jti("iss-a", jti, now + 60, now) is False  # another process's connection
        assert other.claim_jti("iss-b", jti, now + 60, now) is True  # per issuer
        assert store.claim_jti("iss-a", jti, now + 200, now + 61) is True  # expired: may be used again
        assert store.secret("feedback") == other.secret("feedback") and len(store.secret("feedback")) == 32
        assert store.secret("other") != store.secret("feedback")
    finally:
        store.close()
        other.close()


def uvicorn_factory(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "fhir_module.api:create_app", "--factory", "--host", "127.0.0.1",
            "--port", str(port), *extra]


@pytest.mark.parametrize("command, database", [(serve, "sqlite"), (serve, "postgresql"), (uvicorn_factory, "postgresql")],
                         ids=["serve-sqlite", "serve-postgresql", "plain-uvicorn-postgresql"])
def test_workers_share_replay_protection(tmp_path: Path, jwt_client: JwtClient, postgres_url: str,
                                         discovery: dict[str, Any], command: Any, database: str) -> None:
    """Also under plain `uvicorn --factory --workers` (the issue's case: a token accepted once per
    worker). The card-signing key is shared the same way: feedback on a card one worker issued is
    taken by either (with a key of each worker's own, about half would be 400)."""
    port = free_port()
    url = postgres_url if database == "postgresql" else f"sqlite:///{tmp_path / 'f.sqlite3'}"
    env = service_env(tmp_path, jwt_client, url)
    service_id, request = scenario_request("pub-max-dose", discovery)
    with running_service(command(port, "--workers", "2"), env, port, tmp_path / "serve.log") as base:
        aud = f"{PUBLIC}/cds-services"

        async def twice(path: str, body: Any = None) -> list[int]:
            # Two connections at once, each with its own token: with two workers, the two calls
            # usually land on different ones. Without a body: the same token twice.
            async with httpx.AsyncClient(timeout=30) as first, httpx.AsyncClient(timeout=30) as second:
                token = jwt_client.token(aud + path)
                tokens = [token, token] if body is None else [token, jwt_client.token(aud + path)]
                answers = await asyncio.gather(*(
                    client.request("GET" if body is None else "POST", f"{base}/cds-services{path}", json=body,
                                   headers={"Authorization": f"Bearer {token}"})
                    for client, token in zip((first, second), tokens)))
                return sorted(a.status_code for a in answers)

        async def all_tokens() -> list[list[int]]:
            return [await twice("") for _ in range(30)]

        results = asyncio.run(all_tokens())
        answer = httpx.post(f"{base}/cds-services/{service_id}", json=request,
                            headers=jwt_client.authorization(f"{aud}/{service_id}"), timeout=30)
        assert answer.status_code == 200, answer.text
        card = answer.json()["cards"][0]
        feedback = {"feedback": [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-26T10:00:00Z",
                                  "overrideReason": {"reason": card["overrideReasons"][0]}}]}

        async def all_feedback() -> list[list[int]]:
            return [await twice(f"/{service_id}/feedback", feedback) for _ in range(10)]

        feedback_statuses = asyncio.run(all_feedback())
    assert results == [[200, 401]] * 30, results
    assert feedback_statuses == [[200, 200]] * 10, feedback_statuses
    text = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in text
    if command is serve:
        assert "2 worker processes" in text


def test_instances_on_postgresql_share_replay_protection_across_restarts(
    tmp_path: Path, jwt_client: JwtClient, postgres_url: str
) -> None:
    env = service_env(tmp_path, jwt_client, postgres_url)
    aud = f"{PUBLIC}/cds-services"
    first_port, second_port = free_port(), free_port()
    used = jwt_client.token(aud)
    bearer = {"Authorization": f"Bearer {used}"}
    with running_service(serve(first_port), env, first_port, tmp_path / "first.log") as first:
        with running_service(serve(second_port), env, second_port, tmp_path / "second.log") as second:
            assert httpx.get(f"{first}/cds-services", headers=bearer).status_code == 200
            refused = httpx.get(f"{second}/cds-services", headers=bearer)
            assert refused.status_code == 401 and "replay" in refused.text
            fresh = jwt_client.token(aud)
            assert httpx.get(f"{second}/cds-services", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
    # Both instances stopped; a new one still knows the token was used.
    with running_service(serve(first_port), env, first_port, tmp_path / "again.log") as again:
        assert httpx.get(f"{again}/cds-services", headers=bearer).status_code == 401


def test_a_token_that_cannot_be_checked_is_refused_while_the_database_is_down(
    live: Any, jwt_client: JwtClient, tmp_path: Path, postgres_cluster: PostgresCluster, postgres_url: str
) -> None:
    import psycopg

    from fhir_module.config import load_trusted_clients

    name = f"replay_{uuid.uuid4().hex[:8]}"
    postgres_cluster.run("createdb", "-h", "127.0.0.1", "-p", str(postgres_cluster.port), "-U", DB_USER, name)
    url = postgres_cluster.url.rsplit("/", 1)[0] + f"/{name}"
    trusted = load_trusted_clients(str(write_trusted_clients(tmp_path / "c.json", [jwt_client])))

    def connections(allowed: bool) -> None:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {str(allowed).lower()}")
            if not allowed:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))

    with live(database_url=url, trusted_clients=trusted) as base:
        call = f"{base}/cds-services"
        assert httpx.get(call, headers=jwt_client.authorization(call)).status_code == 200
        connections(False)  # the database cannot be reached
        try:
            down = httpx.get(call, headers=jwt_client.authorization(call), timeout=30)
            assert down.status_code == 503, down.text
            assert down.json()["issue"][0]["code"] == "transient" and "replay" in down.text
        finally:
            connections(True)
        assert httpx.get(call, headers=jwt_client.authorization(call), timeout=30).status_code == 200
