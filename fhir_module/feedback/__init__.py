"""Storage of CDS Hooks feedback (accepted suggestions, overridden cards)."""

from .records import FeedbackEntry, StoredFeedback
from .store import FeedbackStore, store_from_url

__all__ = ["FeedbackEntry", "FeedbackStore", "StoredFeedback", "store_from_url"]
