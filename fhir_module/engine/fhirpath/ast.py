"""The syntax tree of a FHIRPath expression, as `parse` returns it.

Every node knows where it stands in the source text (`start`, `end`: character offsets, end
exclusive), so a checker or a compiler can point at the exact place. The tree follows the grammar
fhirpathpy evaluates (its FHIRPath.g4), precedence included, so that whatever walks it means what
fhirpathpy would compute.

Invocations form chains: `%order.dosageInstruction.route.first()` is
`Call(Member(Member(Variable('order'), 'dosageInstruction'), 'route'), 'first', ())`. An invocation
with no `source` applies to the focus (`$this` inside `where(...)`, otherwise the root resource).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from functools import cache
from typing import Iterator, Union

# The operators of `Binary`, by the grammar's precedence (tightest first).
MULTIPLICATIVE = ("*", "/", "div", "mod")
ADDITIVE = ("+", "-", "&")
UNION = ("|",)
INEQUALITY = ("<=", "<", ">", ">=")
EQUALITY = ("=", "~", "!=", "!~")
MEMBERSHIP = ("in", "contains")
BOOLEAN = ("and", "or", "xor", "implies")
BINARY_OPERATORS = MULTIPLICATIVE + ADDITIVE + UNION + INEQUALITY + EQUALITY + MEMBERSHIP + BOOLEAN

# Literal kinds.
NULL, BOOLEAN_LITERAL, STRING, NUMBER, DATE, DATETIME, TIME, QUANTITY = (
    "null", "boolean", "string", "number", "date", "datetime", "time", "quantity")


@dataclass(frozen=True)
class Node:
    """A node and its place in the source text: `text[start:end]` is what it was parsed from."""

    start: int = field(compare=False)
    end: int = field(compare=False)

    def children(self) -> Iterator["Node"]:
        """The nodes directly under this one, in source order."""
        for name in _field_names(type(self)):
            value = getattr(self, name)
            if isinstance(value, Node):
                yield value
            elif isinstance(value, tuple):
                yield from (v for v in value if isinstance(v, Node))

    def walk(self) -> tuple["Node", ...]:
        """This node and every node under it, depth first, in source order."""
        # Kept on the node (a tree never changes, and parse gives each text's tree once): the
        # knowledge check and the compiler walk each tree again and again (~1,900 walks at start).
        walked = self.__dict__.get("_walked")
        if walked is None:
            walked = self.__dict__["_walked"] = (self, *(node for child in self.children() for node in child.walk()))
        return walked


@cache
def _field_names(node_type: type) -> tuple[str, ...]:
    # dataclasses.fields() builds its answer at each call: the knowledge check walks every tree often.
    return tuple(item.name for item in fields(node_type))


@dataclass(frozen=True)
class Literal(Node):
    """`{}` (null), `true`, `'text'` (unescaped), `42`, `4.5`, `@2024-01-01`, `@T10:00`, `5 'mg'`.

    `value` is None for null, a bool, a str, an int or a Decimal (numbers and quantities), or the
    date/time text without its `@`; `unit` is a quantity's unit (UCUM text or a calendar word).
    """

    kind: str
    value: Union[None, bool, str, int, Decimal]
    unit: str | None = None


@dataclass(frozen=True)
class Variable(Node):
    """`%name` (also written `%'name'` or %`name`): an external constant from the environment."""

    name: str


@dataclass(frozen=True)
class Member(Node):
    """`source.name`, or `name` on the focus when `source` is None (also a type name, `Patient`)."""

    source: Node | None
    name: str


@dataclass(frozen=True)
class Call(Node):
    """`source.name(args)`, or `name(args)` on the focus when `source` is None."""

    source: Node | None
    name: str
    args: tuple[Node, ...]
    name_start: int = field(default=0, compare=False)  # where the function's name begins


@dataclass(frozen=True)
class Special(Node):
    """`$this`, `$index` or `$total` (with a `source` only in the odd `x.$this`)."""

    source: Node | None
    name: str


@dataclass(frozen=True)
class Indexer(Node):
    """`source[index]`."""

    source: Node
    index: Node


@dataclass(frozen=True)
class Unary(Node):
    """`-operand` or `+operand`."""

    op: str
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    """`left op right` for every infix operator in BINARY_OPERATORS."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class TypeOperation(Node):
    """`operand is Type` or `operand as Type`; `type_name` is the (qualified) name, e.g. `FHIR.Quantity`."""

    op: str
    operand: Node
    type_name: str
