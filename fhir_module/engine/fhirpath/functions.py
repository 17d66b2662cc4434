"""Which functions an expression may call, with how many arguments of which kind.

`STANDARD_FUNCTIONS` are the FHIRPath functions fhirpathpy implements, read from its own invocation
table, so that the strict check allows exactly what the evaluator can run (`resolve()`,
`memberOf()` and the other functions fhirpathpy lacks are unknown functions, refused when the
knowledge is checked instead of failing on every request). The engine adds the module's own
functions (engine/functions.py) to the same kind of table.

Importing fhirpathpy loads ANTLR and its evaluator, which the start needs for nothing else, so the
table is also kept written out (fhirpathpy_functions.py, with the digest of the fhirpathpy file
that defines it) and read from there while the installed file has that digest; any other
fhirpathpy is read itself. Rewrite the file with `python -m fhir_module.engine.fhirpath.functions`
(tests/engine/fhirpath/test_fhirpath_functions.py fails when it is stale).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from . import installed

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


def from_fhirpathpy() -> dict[str, Function]:
    """The table, read from the installed fhirpathpy's invocation registry (imports fhirpathpy)."""
    from fhirpathpy.engine.invocations import invocation_registry

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


# The fhirpathpy file that defines the registry, under its package folder.
REGISTRY_FILE = "engine/invocations/__init__.py"


def installed_registry_digest() -> str | None:
    """SHA-256 of the installed fhirpathpy's registry file, found without importing fhirpathpy."""
    return installed.digest(REGISTRY_FILE)


def from_written(table: Mapping[str, Any]) -> dict[str, Function]:
    """The table as fhirpathpy_functions.py writes it: a kind for a variadic function, else its
    argument kinds by count."""
    return {name: Function(name, {}, variadic=entry) if isinstance(entry, str) else Function(name, dict(entry))
            for name, entry in table.items()}


def _standard() -> dict[str, Function]:
    from . import fhirpathpy_functions as written

    if installed_registry_digest() == written.SHA256:
        return from_written(written.TABLE)
    return from_fhirpathpy()  # another fhirpathpy (or its file not found): read its own table


STANDARD_FUNCTIONS: Mapping[str, Function] = _standard()


def written_module() -> str:
    """The text of fhirpathpy_functions.py for the installed fhirpathpy."""
    import pprint

    table = {name: function.variadic or dict(function.arities) for name, function in from_fhirpathpy().items()}
    return (
        '"""fhirpathpy\'s function table, as functions.py reads it from fhirpathpy, written by\n'
        '`python -m fhir_module.engine.fhirpath.functions` (do not edit): each function\'s argument kinds\n'
        'by argument count, or the kind of a variadic function\'s arguments. Read only while the installed\n'
        'fhirpathpy\'s registry file has this SHA-256.\n"""\n\n'
        f"SHA256 = {installed_registry_digest()!r}\n\n"
        f"TABLE = {pprint.pformat(table, width=100, sort_dicts=False)}\n"
    )


if __name__ == "__main__":
    Path(__file__).with_name("fhirpathpy_functions.py").write_text(written_module(), encoding="utf-8")
