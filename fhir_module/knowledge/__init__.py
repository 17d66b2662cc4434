"""The knowledge definition: data files that say what the monograph means, checked on load."""

from .loader import KnowledgeError, KnowledgeUnreadable, build_knowledge, load_knowledge, map_valuesets, valueset_names
from .model import Knowledge, Rule, ValueSetDef
from .modules import builtin_module_dir, builtin_module_dirs, case_files

__all__ = [
    "Knowledge", "KnowledgeError", "KnowledgeUnreadable", "Rule", "ValueSetDef", "build_knowledge", "builtin_module_dir",
    "builtin_module_dirs", "case_files", "load_knowledge", "map_valuesets", "valueset_names",
]
