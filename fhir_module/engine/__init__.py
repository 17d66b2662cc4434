"""The engine: applies the knowledge's PlanDefinitions to CDS Hooks requests (no HTTP inside)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import RequestError
    from .knowledgebase import KnowledgeBase, KnowledgeLoadError
    from .service import Engine

__all__ = ["Engine", "KnowledgeBase", "KnowledgeLoadError", "RequestError"]

# Where each name is defined, imported on first use: `validate` reads the FHIRPath type paths
# (engine.fhirpath) and the knowledge check without loading the engine that serves.
_DEFINED_IN = {"Engine": "service", "KnowledgeBase": "knowledgebase", "KnowledgeLoadError": "knowledgebase",
               "RequestError": "errors"}


def __getattr__(name: str) -> Any:
    if name not in _DEFINED_IN:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{_DEFINED_IN[name]}", __name__), name)
    globals()[name] = value  # once: later reads find it here
    return value
