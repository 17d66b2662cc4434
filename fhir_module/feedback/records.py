"""One CDS Hooks feedback item as the stores keep it."""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from typing import Any


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
