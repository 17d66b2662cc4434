"""Which functions an expression may call, with how many arguments of which kind.

`STANDARD_FUNCTIONS` are the FHIRPath functions fhirpathpy implements, read from its own invocation
table, so that the strict check allows exactly what the evaluator can run (`resolve()`,
`memberOf()` and the other functions fhirpathpy lacks are unknown functions, refused when the
knowledge is checked instead of failing on every request). The engine adds the module's own
functions (engine/functions.py) to the same kind of table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

from fhirpathpy.engine.invocations import invocation_registry

# Argument kinds, as fhirpathpy names them, plus ValueSet (ours: a string literal naming a value set
# of the knowledge, by id or canonical URL).
EXPR = "Expr"  # evaluated per item of the input ($this), e.g. where(...)
ANY_AT_ROOT = "AnyAtRoot"
ANY = "Any"
STRING = "String"
INTEGER = "Integer"
NUMBER = "Number"
BOOLEAN = "Boolean"
TYPE_SPECIFIER = "TypeSpecifier"
IDENTIFIER = "Identifier"
VALUESET = "ValueSet"


@dataclass(frozen=True)
class Function:
    """A callable function: its argument kinds by argument count (`variadic`: one or more of a kind)."""

    name: str
    arities: Mapping[int, tuple[str, ...]] = field(default_factory=lambda: {0: ()})
    variadic: str | None = None

    def accepts(self, count: int) -> bool:
        return count >= 1 if self.variadic else count in self.arities

    def kinds(self, count: int) -> tuple[str, ...]:
        """The kind of each of `count` arguments (the count must be accepted)."""
        return (self.variadic,) * count if self.variadic else self.arities[count]

    def describe_arity(self) -> str:
        if self.variadic:
            return "one or more arguments"
        counts = sorted(self.arities)
        words = " or ".join(str(c) for c in counts)
        return f"{words} argument{'' if counts == [1] else 's'}"


# Registry entries that implement operators (`a contains b`, `x is T`, `and`, ...), not functions.
_OPERATOR_ENTRIES = {"containsOp", "inOp", "isOp", "asOp", "and", "or", "xor", "implies", "div", "mod"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _kind(kind: object) -> str:
    # fhirpathpy writes "may be empty" kinds as a one-item list (["Boolean"]).
    return kind[0] if isinstance(kind, list) else str(kind)


def _standard() -> dict[str, Function]:
    table = {}
    for name, entry in invocation_registry.items():
        if not _NAME.fullmatch(name) or name in _OPERATOR_ENTRIES:
            continue
        if "variadic" in entry:
            table[name] = Function(name, {}, variadic=_kind(entry["variadic"]))
        elif "arity" in entry:
            table[name] = Function(name, {n: tuple(_kind(k) for k in kinds) for n, kinds in entry["arity"].items()})
        else:
            table[name] = Function(name)
    return table


STANDARD_FUNCTIONS: Mapping[str, Function] = _standard()
