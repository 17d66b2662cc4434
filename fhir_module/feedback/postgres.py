"""Feedback in PostgreSQL (psycopg 3), for deployments with several service instances.

A connection per operation keeps the store free of connection-state bugs (a broken connection is
simply not reused); feedback is low-volume, so the connect cost does not matter. `add` returns
after COMMIT, which PostgreSQL makes durable (synchronous_commit is on by default).
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any, Sequence

from .records import FeedbackEntry, StoredFeedback, utc

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
    item_json JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS cds_feedback_service ON cds_feedback (service_id, id);
"""


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
        with self._connect() as conn:
            conn.execute(_SCHEMA)

    def _connect(self) -> Any:
        return self._psycopg.connect(self._url, connect_timeout=self._timeout)

    def add(self, service_id: str, entries: Sequence[FeedbackEntry], received_at: _dt.datetime) -> int:
        rows = [
            (
                service_id,
                e.card,
                e.outcome,
                json.dumps(list(e.accepted_suggestions)),
                e.override_system,
                e.override_code,
                e.override_display,
                e.user_comment,
                utc(e.outcome_timestamp),
                utc(received_at),
                e.raw_json(),
            )
            for e in entries
        ]
        # The connection context manager commits on success and rolls back on error.
        with self._connect() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO cds_feedback (service_id, card_uuid, outcome, accepted_suggestions,"
                " override_system, override_code, override_display, user_comment,"
                " outcome_timestamp, received_at, item_json)"
                " VALUES (%s,%s,%s,%s::jsonb,%s,%s,%s,%s,%s,%s,%s::jsonb)",
                rows,
            )
        return len(rows)

    def list(self, service_id: str | None = None) -> list[StoredFeedback]:
        query = (
            "SELECT id, service_id, card_uuid, outcome, accepted_suggestions, override_system,"
            " override_code, override_display, user_comment, outcome_timestamp, received_at, item_json"
            " FROM cds_feedback"
        )
        params: tuple[str, ...] = ()
        if service_id is not None:
            query += " WHERE service_id = %s"
            params = (service_id,)
        with self._connect() as conn:
            rows = conn.execute(query + " ORDER BY id", params).fetchall()
        return [
            StoredFeedback(
                id=row[0],
                service_id=row[1],
                received_at=row[10],
                entry=FeedbackEntry(
                    card=row[2],
                    outcome=row[3],
                    accepted_suggestions=tuple(row[4]),
                    override_system=row[5],
                    override_code=row[6],
                    override_display=row[7],
                    user_comment=row[8],
                    outcome_timestamp=row[9],
                    raw=row[11],
                ),
            )
            for row in rows
        ]

    def ping(self) -> None:
        with self._connect() as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        """Nothing held open between operations."""
