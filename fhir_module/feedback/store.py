"""The FeedbackStore protocol and the choice of implementation by database URL.

The database holds the feedback and what the service's processes must share to be run as several
workers or instances (`serve --workers N`): the JWT ids already used and the service's secrets.
"""

from __future__ import annotations

import datetime as _dt
from typing import Protocol, Sequence

from .records import FeedbackEntry, StoredFeedback


class FeedbackStore(Protocol):
    """Durable storage of feedback: `add` returns only after the rows are committed."""

    kind: str

    def add(self, service_id: str, entries: Sequence[FeedbackEntry], received_at: _dt.datetime) -> tuple[int, int]:
        """Store every entry as one row (all or none), but an entry whose card and outcome are
        stored already: (rows stored now, entries that were stored before)."""
        ...

    def list(self, service_id: str | None = None) -> list[StoredFeedback]:
        """Stored rows in insertion order, optionally of one service."""
        ...

    def claim_jti(self, iss: str, jti: str, expires_at: float, now: float) -> bool:
        """True the first time (iss, jti) is claimed before `expires_at` (epoch seconds) passes:
        JWT replay protection shared by every process and instance on this database."""
        ...

    def secret(self, name: str) -> bytes:
        """A random 32-byte secret of this name, made once and then the same for every process."""
        ...

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        ...

    def close(self) -> None:
        ...


def store_from_url(url: str) -> FeedbackStore:
    """`sqlite:///path` (`sqlite:////abs/path`) or `postgresql://...`."""
    if url.startswith("sqlite:///"):
        from .sqlite import SqliteFeedbackStore

        return SqliteFeedbackStore(url[len("sqlite:///"):])
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresFeedbackStore

        return PostgresFeedbackStore(url)
    raise ValueError(f"unsupported feedback database URL {url.split(':', 1)[0]!r}: use sqlite:/// or postgresql://")
