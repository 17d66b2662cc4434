"""The module's artifacts built in memory from the packaged knowledge (what the service serves by default)."""

from __future__ import annotations

from functools import cache
from typing import Any

from .common import R4


@cache
def built_in_resources(version: str = R4) -> tuple[dict[str, Any], ...]:
    from fhir_module.knowledge import load_knowledge

    knowledge = load_knowledge()
    try:
        from .bundle import build_resources
    except ImportError:  # while only the rule artifacts exist
        from .activitydefinitions import build_activitydefinitions
        from .plandefinitions import build_plandefinitions
        from .valuesets import build_codesystems, build_valuesets

        def build_resources(k: Any, v: str) -> list[dict[str, Any]]:
            return [*build_plandefinitions(k, v), *build_valuesets(k, v), *build_codesystems(k, v),
                    *build_activitydefinitions(k, v)]

    return tuple(build_resources(knowledge, version))
