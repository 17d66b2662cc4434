"""The knowledge definition: data files that say what the monograph means, checked on load."""

from .loader import KnowledgeError, build_knowledge, default_knowledge_path, load_knowledge
from .model import Knowledge, Rule, ValueSetDef

__all__ = ["Knowledge", "KnowledgeError", "Rule", "ValueSetDef", "build_knowledge", "default_knowledge_path", "load_knowledge"]
