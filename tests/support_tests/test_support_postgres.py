"""The throwaway PostgreSQL cluster accepts connections at the URL the fixture gives."""

from __future__ import annotations

import os
import pwd

import psycopg
import pytest

from tests.support.postgres import PostgresCluster, PostgresUnavailable, find_bin_dir


def test_url_is_loopback_postgresql(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql://")
    assert "@127.0.0.1:" in postgres_url


def test_connect_create_insert_select(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, connect_timeout=10) as conn:
        with conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE support_probe (id serial PRIMARY KEY, note text NOT NULL)")
            cur.execute("INSERT INTO support_probe (note) VALUES (%s) RETURNING id", ("hello",))
            (row_id,) = cur.fetchone()
            cur.execute("SELECT note FROM support_probe WHERE id = %s", (row_id,))
            assert cur.fetchone() == ("hello",)
            cur.execute("SELECT current_database(), inet_server_addr()::text")
            database, address = cur.fetchone()
    assert postgres_url.endswith(f"/{database}")
    assert address.startswith("127.0.0.1")


def test_cluster_runs_as_a_non_root_user(postgres_cluster: PostgresCluster) -> None:
    owner = pwd.getpwuid(os.stat(postgres_cluster.data_dir).st_uid).pw_name
    assert owner != "root"
    if os.geteuid() != 0:
        assert owner == pwd.getpwuid(os.geteuid()).pw_name


def test_binaries_are_found() -> None:
    bin_dir = find_bin_dir()
    assert (bin_dir / "initdb").exists() and (bin_dir / "pg_ctl").exists()


def test_a_failing_command_is_a_clear_error(postgres_cluster: PostgresCluster) -> None:
    with pytest.raises(PostgresUnavailable, match="pg_ctl"):
        postgres_cluster.run("pg_ctl", "-D", str(postgres_cluster.base_dir / "no-such-dir"), "status")
