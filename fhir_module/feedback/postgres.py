"""Feedback in PostgreSQL (psycopg 3), for deployments with several service instances.

A connection per operation keeps the store free of connection-state bugs (a broken connection is
simply not reused); feedback is low-volume, so the connect cost does not matter. `add` returns
after COMMIT, which PostgreSQL makes durable (synchronous_commit is on by default). JWT ids are
claimed on every authenticated call, so that one statement keeps a connection (autocommit,
asynchronous commit), replaced once when it breaks.
"""

from __future__ import annotations

import datetime as _dt
import logging
import secrets
import threading
from typing import Any, Sequence

from .records import (
    CLAIM_JTI_SQL, COLUMNS, DEDUPLICATE_SQL, INSERT_SECRET_SQL, UNIQUE_INDEX_SQL, PURGE_EVERY, PURGE_JTI_SQL, SELECT_SECRET_SQL, FeedbackEntry,
    StoredFeedback, insert_sql, row_of, select_sql, stored_of,
)

log = logging.getLogger("fhir_module.feedback")

_JSONB = {"accepted_suggestions", "item_json"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cds_feedback (
    id BIGSERIAL PRIMARY KEY,
    service_id TEXT NOT NULL,
    card_uuid TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'overridden')),
    accepted_suggestions JSONB NOT NULL,
    override_system TEXT,
    override_code TEXT,
    override_display TEXT,
    user_comment TEXT,
    outcome_timestamp TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    item_json JSONB NOT NULL,
    card_topic TEXT
);
CREATE INDEX IF NOT EXISTS cds_feedback_service ON cds_feedback (service_id, id);
CREATE TABLE IF NOT EXISTS jwt_replay (
    iss TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (iss, jti)
);
CREATE TABLE IF NOT EXISTS service_secret (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
"""
# Workers and instances start together: CREATE ... IF NOT EXISTS races in PostgreSQL (a duplicate
# catalog row), so the schema is made under a transaction-scoped advisory lock.
_SCHEMA_LOCK = 0x46484952  # "FHIR"


class PostgresFeedbackStore:
    kind = "postgresql"

    def __init__(self, url: str, connect_timeout: int = 10) -> None:
        try:
            import psycopg
        except ImportError:  # pragma: no cover - depends on the installation
            raise ValueError("a postgresql:// feedback URL needs psycopg: pip install 'fhir-module[postgres]'") from None
        self._psycopg = psycopg
        self._url = url
        self._timeout = connect_timeout
        self._claims = 0
        self._claim_lock = threading.Lock()
        self._claim_conn: Any = None
        with self._connect() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            conn.execute(_SCHEMA)
            # Older databases: the rule column, and one row per card and outcome.
            conn.execute("ALTER TABLE cds_feedback ADD COLUMN IF NOT EXISTS card_topic TEXT")
            if conn.execute("SELECT to_regclass('cds_feedback_once')").fetchone()[0] is None:
                removed = conn.execute(DEDUPLICATE_SQL).rowcount
                conn.execute(UNIQUE_INDEX_SQL)
                if removed:
                    log.warning("feedback: removed %d duplicate rows (items resent before feedback was idempotent)",
                                removed)

    def _connect(self) -> Any:
        return self._psycopg.connect(self._url, connect_timeout=self._timeout)

    def add(self, service_id: str, entries: Sequence[FeedbackEntry], received_at: _dt.datetime) -> tuple[int, int]:
        rows = [row_of(service_id, entry, received_at, lambda moment: moment) for entry in entries]
        insert = insert_sql(["%s::jsonb" if column in _JSONB else "%s" for column in COLUMNS])
        stored = 0
        # The connection context manager commits on success and rolls back on error.
        with self._connect() as conn, conn.cursor() as cur:
            for row in rows:
                stored += cur.execute(insert, row).fetchone() is not None
        return stored, len(rows) - stored

    def list(self, service_id: str | None = None) -> list[StoredFeedback]:
        query, params = select_sql("%s", service_id)
        with self._connect() as conn:
            rows = conn.execute(query, params).fetchall()
        # psycopg already gives JSONB as Python values and TIMESTAMPTZ as datetimes.
        return [stored_of(row, load_json=lambda value: value, load_time=lambda value: value) for row in rows]

    def claim_jti(self, iss: str, jti: str, expires_at: float, now: float) -> bool:
        with self._claim_lock:
            for attempt in (1, 2):
                try:
                    if self._claim_conn is None or self._claim_conn.closed:
                        self._claim_conn = self._psycopg.connect(self._url, connect_timeout=self._timeout,
                                                                 autocommit=True)
                        # A claim need not wait for the WAL flush (the server still applies it in
                        # order); feedback's own connections keep synchronous commits.
                        self._claim_conn.execute("SET synchronous_commit = off")
                    conn = self._claim_conn
                    claimed = conn.execute(CLAIM_JTI_SQL.format(m="%s"), (iss, jti, expires_at, now)).fetchone()
                    break
                except self._psycopg.OperationalError:
                    if self._claim_conn is not None:
                        self._claim_conn.close()
                    self._claim_conn = None
                    if attempt == 2:
                        raise
            self._claims += 1
            if self._claims % PURGE_EVERY == 0:
                conn.execute(PURGE_JTI_SQL.format(m="%s"), (now,))
        return claimed is not None

    def secret(self, name: str) -> bytes:
        with self._connect() as conn:
            conn.execute(INSERT_SECRET_SQL.format(m="%s"), (name, secrets.token_bytes(32)))
            return bytes(conn.execute(SELECT_SECRET_SQL.format(m="%s"), (name,)).fetchone()[0])

    def ping(self) -> None:
        with self._connect() as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        """Only the claims' connection is held open."""
        with self._claim_lock:
            if self._claim_conn is not None:
                self._claim_conn.close()
                self._claim_conn = None
