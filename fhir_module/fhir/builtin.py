"""The built-in modules' artifacts, built in memory (what the service serves by default)."""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir_module.knowledge import Knowledge, builtin_module_dirs, load_knowledge

from .common import R4


@cache
def built_in_knowledge() -> tuple[Knowledge, ...]:
    """Every built-in module, checked, in name order."""
    return tuple(load_knowledge(folder) for folder in builtin_module_dirs())


@cache
def module_resources(name: str, version: str = R4) -> tuple[dict[str, Any], ...]:
    """The artifacts of one built-in module."""
    from .bundle import build_resources

    knowledge = next((k for k in built_in_knowledge() if k.module["id"] == name), None)
    if knowledge is None:
        raise KeyError(f"no built-in module {name!r}")
    return tuple(build_resources(knowledge, version))


@cache
def built_in_resources(version: str = R4) -> tuple[dict[str, Any], ...]:
    """The artifacts of every built-in module, one module after the other."""
    from .bundle import build_resources

    return tuple(resource for knowledge in built_in_knowledge() for resource in build_resources(knowledge, version))
