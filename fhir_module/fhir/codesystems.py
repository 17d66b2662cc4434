"""CodeSystems of the module (rule topics, override reasons); built beside the ValueSets."""

from .valuesets import build_codesystems

__all__ = ["build_codesystems"]
