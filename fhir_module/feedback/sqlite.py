"""Feedback in SQLite (the default store).

Rollback journal with `synchronous=FULL`: a committed transaction is on disk before `add`
returns, so feedback the service acknowledged survives a crash or power loss. One connection,
serialised by a lock, so the store also works for `:memory:` and from FastAPI's thread pool.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import secrets
import sqlite3
import threading
from pathlib import Path
from typing import Sequence

from .records import (
    CLAIM_JTI_SQL, COLUMNS, DEDUPLICATE_SQL, INSERT_SECRET_SQL, UNIQUE_INDEX_SQL, PURGE_EVERY, PURGE_JTI_SQL, SELECT_SECRET_SQL, FeedbackEntry,
    StoredFeedback, insert_sql, row_of, select_sql, stored_of,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cds_feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id TEXT NOT NULL,
    card_uuid TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'overridden')),
    accepted_suggestions TEXT NOT NULL,
    override_system TEXT,
    override_code TEXT,
    override_display TEXT,
    user_comment TEXT,
    outcome_timestamp TEXT NOT NULL,
    received_at TEXT NOT NULL,
    item_json TEXT NOT NULL,
    card_topic TEXT
);
CREATE INDEX IF NOT EXISTS cds_feedback_service ON cds_feedback (service_id, id);
CREATE TABLE IF NOT EXISTS jwt_replay (
    iss TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (iss, jti)
);
CREATE TABLE IF NOT EXISTS service_secret (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"""
log = logging.getLogger("fhir_module.feedback")

# Several processes (`serve --workers N`) write this file: a writer waits for another's lock.
BUSY_TIMEOUT_MS = 10_000


class SqliteFeedbackStore:
    kind = "sqlite"

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise ValueError(f"feedback database directory {str(parent)!r} does not exist")
            path = str(Path(path).expanduser())
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._claims = 0
        with self._lock:
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode=DELETE")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._migrate()
        # JWT ids are claimed on every authenticated call: on a connection of their own that does
        # not wait for the disk (10 ms an fsync here). A claim survives the process (the OS holds
        # the write), a power cut could lose the last few; feedback keeps its FULL sync.
        if path == ":memory:":
            self._claims_db, self._claims_lock = self._db, self._lock
        else:
            self._claims_db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._claims_lock = threading.Lock()
            self._claims_db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._claims_db.execute("PRAGMA synchronous=OFF")

    def add(self, service_id: str, entries: Sequence[FeedbackEntry], received_at: _dt.datetime) -> tuple[int, int]:
        rows = [row_of(service_id, entry, received_at, _dt.datetime.isoformat) for entry in entries]
        insert = insert_sql(["?"] * len(COLUMNS))
        stored = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    stored += self._db.execute(insert, row).fetchone() is not None
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return stored, len(rows) - stored

    def _migrate(self) -> None:
        """Older databases: the rule column, and one row per card and outcome."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(cds_feedback)")}
        if "card_topic" not in columns:
            self._db.execute("ALTER TABLE cds_feedback ADD COLUMN card_topic TEXT")
        if not self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'cds_feedback_once'").fetchone():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                removed = self._db.execute(DEDUPLICATE_SQL).rowcount
                self._db.execute(UNIQUE_INDEX_SQL)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if removed:
                log.warning("feedback: removed %d duplicate rows (items resent before feedback was idempotent)", removed)

    def list(self, service_id: str | None = None) -> list[StoredFeedback]:
        query, params = select_sql("?", service_id)
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return [stored_of(row, load_json=json.loads, load_time=_dt.datetime.fromisoformat) for row in rows]

    def claim_jti(self, iss: str, jti: str, expires_at: float, now: float) -> bool:
        with self._claims_lock:
            db = self._claims_db
            claimed = db.execute(CLAIM_JTI_SQL.format(m="?"), (iss, jti, expires_at, now)).fetchone() is not None
            self._claims += 1
            if self._claims % PURGE_EVERY == 0:
                db.execute(PURGE_JTI_SQL.format(m="?"), (now,))
        return claimed

    def secret(self, name: str) -> bytes:
        with self._lock:
            self._db.execute(INSERT_SECRET_SQL.format(m="?"), (name, secrets.token_bytes(32)))
            return bytes(self._db.execute(SELECT_SECRET_SQL.format(m="?"), (name,)).fetchone()[0])

    def ping(self) -> None:
        with self._lock:
            self._db.execute("SELECT 1").fetchone()

    def close(self) -> None:
        with self._lock:
            self._db.close()
        if self._claims_db is not self._db:
            with self._claims_lock:
                self._claims_db.close()
