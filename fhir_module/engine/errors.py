"""Errors the engine reports to its caller: a bad request is the client's to fix (4xx); knowledge
that cannot be used is refused before anything is served."""

from __future__ import annotations


class RequestError(ValueError):
    """The hook request cannot be evaluated as sent; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str, expression: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.expression = expression or []


class KnowledgeLoadError(ValueError):
    """The knowledge bundle cannot be used (unreadable, or missing what the service needs)."""
