"""The value sets a knowledge expression names: the quoted arguments of the engine's value-set functions.

In the knowledge file an expression names a value set by its id (`therapies('maoi')`); the builders
rename each to its canonical URL, so a PlanDefinition says exactly which ValueSet it means.
"""

from __future__ import annotations

import re
from typing import Callable

# The engine functions whose quoted arguments name value sets.
_VALUESET_ARGUMENT = re.compile(
    r"\b(?:medicationMatch|therapies|conditions|allergies|conceptIn|resolveIn|latestObservation"
    r"|latestObservationWithValue|bloodPressure|renalFunction|renalNotUsed)\(([^)]*)\)"
)
_QUOTED = re.compile(r"'([^']*)'")


def valueset_names(expression: str) -> list[str]:
    """The value sets an expression names, in order."""
    return [name for call in _VALUESET_ARGUMENT.finditer(expression) for name in _QUOTED.findall(call.group(1))]


def map_valuesets(expression: str, rename: Callable[[str], str]) -> str:
    """The expression with each value set it names replaced by `rename(name)` (e.g. its canonical URL)."""

    def call(match: re.Match[str]) -> str:
        start, end = match.start(1) - match.start(), match.end(1) - match.start()
        arguments = _QUOTED.sub(lambda quoted: "'" + rename(quoted.group(1)) + "'", match.group(1))
        return match.group()[:start] + arguments + match.group()[end:]

    return _VALUESET_ARGUMENT.sub(call, expression)
