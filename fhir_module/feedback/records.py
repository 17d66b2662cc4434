"""One CDS Hooks feedback item as the stores keep it."""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class FeedbackEntry:
    """A validated feedback item (CDS Hooks 2.0 "Feedback"), plus the JSON it came as."""

    card: str
    outcome: str  # accepted | overridden
    outcome_timestamp: _dt.datetime
    accepted_suggestions: tuple[str, ...] = ()
    override_system: str | None = None
    override_code: str | None = None
    override_display: str | None = None
    user_comment: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    rule: str | None = None  # the card's topic, `system|code` (api/cardids.py), when known

    def raw_json(self) -> str:
        return json.dumps(self.raw, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class StoredFeedback:
    """A feedback row read back from a store."""

    id: int
    service_id: str
    received_at: _dt.datetime
    entry: FeedbackEntry


def utc(value: _dt.datetime) -> _dt.datetime:
    """The same instant in UTC (naive values are taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(_dt.timezone.utc)


# -- one table, two databases: the columns and their mapping, shared by the SQL stores ----------

COLUMNS = (
    "service_id", "card_uuid", "outcome", "accepted_suggestions", "override_system", "override_code",
    "override_display", "user_comment", "outcome_timestamp", "received_at", "item_json", "card_topic",
)
# A card has one outcome per kind: a resent item (its 200 lost, say) is the item already stored.
UNIQUE_ITEM = ("service_id", "card_uuid", "outcome")
# Before items were unique, a resend stored a second row: kept are the first of each.
DEDUPLICATE_SQL = (
    "DELETE FROM cds_feedback WHERE id NOT IN "
    "(SELECT MIN(id) FROM cds_feedback GROUP BY service_id, card_uuid, outcome)"
)
UNIQUE_INDEX_SQL = "CREATE UNIQUE INDEX IF NOT EXISTS cds_feedback_once ON cds_feedback (service_id, card_uuid, outcome)"


def insert_sql(placeholders: Sequence[str]) -> str:
    """`INSERT` of one row unless that card's outcome is stored already (then no row returned);
    `placeholders` gives each column's parameter marker (with any cast)."""
    return (f"INSERT INTO cds_feedback ({', '.join(COLUMNS)}) VALUES ({', '.join(placeholders)}) "
            f"ON CONFLICT ({', '.join(UNIQUE_ITEM)}) DO NOTHING RETURNING id")


def select_sql(marker: str, service_id: str | None) -> tuple[str, tuple[str, ...]]:
    """`SELECT` of stored rows in insertion order, of one service when given."""
    query = f"SELECT id, {', '.join(COLUMNS)} FROM cds_feedback"
    if service_id is None:
        return query + " ORDER BY id", ()
    return query + f" WHERE service_id = {marker} ORDER BY id", (service_id,)


def row_of(
    service_id: str, entry: FeedbackEntry, received_at: _dt.datetime, time: Callable[[_dt.datetime], Any]
) -> tuple[Any, ...]:
    """The column values of one entry; `time` turns a UTC datetime into what the database takes."""
    return (
        service_id, entry.card, entry.outcome, json.dumps(list(entry.accepted_suggestions)),
        entry.override_system, entry.override_code, entry.override_display, entry.user_comment,
        time(utc(entry.outcome_timestamp)), time(utc(received_at)), entry.raw_json(), entry.rule,
    )


def stored_of(row: Sequence[Any], *, load_json: Callable[[Any], Any], load_time: Callable[[Any], _dt.datetime]) -> StoredFeedback:
    """A stored row (`id` first, then COLUMNS) back as StoredFeedback."""
    return StoredFeedback(
        id=row[0],
        service_id=row[1],
        received_at=load_time(row[10]),
        entry=FeedbackEntry(
            card=row[2],
            outcome=row[3],
            accepted_suggestions=tuple(load_json(row[4])),
            override_system=row[5],
            override_code=row[6],
            override_display=row[7],
            user_comment=row[8],
            outcome_timestamp=load_time(row[9]),
            raw=load_json(row[11]),
            rule=row[12],
        ),
    )


# -- state the service's processes share: JWT ids already used, and secrets ---------------------

# A jti is remembered until its token could no longer be accepted (exp plus the clock leeway); an
# expired row may be claimed again. `RETURNING` yields a row only when this call claimed it.
CLAIM_JTI_SQL = (
    "INSERT INTO jwt_replay (iss, jti, expires_at) VALUES ({m}, {m}, {m}) "
    "ON CONFLICT (iss, jti) DO UPDATE SET expires_at = excluded.expires_at "
    "WHERE jwt_replay.expires_at < {m} RETURNING 1"
)
PURGE_JTI_SQL = "DELETE FROM jwt_replay WHERE expires_at < {m}"
# Claims between two purges of expired rows.
PURGE_EVERY = 500
INSERT_SECRET_SQL = "INSERT INTO service_secret (name, value) VALUES ({m}, {m}) ON CONFLICT (name) DO NOTHING"
SELECT_SECRET_SQL = "SELECT value FROM service_secret WHERE name = {m}"
