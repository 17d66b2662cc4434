"""The engine: applies the knowledge's PlanDefinitions to CDS Hooks requests (no HTTP inside)."""

from .errors import RequestError
from .knowledgebase import KnowledgeBase, KnowledgeLoadError
from .service import Engine

__all__ = ["Engine", "KnowledgeBase", "KnowledgeLoadError", "RequestError"]
