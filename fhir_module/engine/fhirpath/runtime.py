"""What compiled FHIRPath runs on: the evaluation state, the compiled node, and fhirpathpy's value
rules (a float from the data is a Decimal, how collections de-duplicate, what counts as true).
"""

from __future__ import annotations

import copy

import json
import numbers
from collections import OrderedDict
from decimal import Decimal
from typing import Any, Callable, Mapping

from . import ast
from .typepaths import UNTYPED_ONLY

# What a compiled node yields, as fhirpathpy would hold it: values it navigated to (its
# ResourceNode wrappers), values it made or was given (raw), nothing, or both kinds.
NODE, RAW, EMPTY, MIXED = "node", "raw", "empty", "mixed"
DEFAULT_VARIABLES = {"context": None, "ucum": "http://unitsofmeasure.org"}

Evaluator = Callable[["Env", list], list]


class Deferred(Exception):
    """The data has a shape whose meaning the compiled code does not model (fhirpathpy types a
    navigated object by its `resourceType`): this one evaluation is the reference's to make."""


class Unsupported(ValueError):
    """The expression uses FHIRPath outside the compiled subset."""

    def __init__(self, node: ast.Node, what: str) -> None:
        super().__init__(f"{what} (at offset {node.start}) is outside the compiled FHIRPath subset")
        self.offset = node.start


class Env:
    """One evaluation's state, as fhirpathpy's context dict holds it (`$this` leaks the same way)."""

    __slots__ = ("variables", "root", "this", "index", "total")

    def __init__(self, variables: Mapping[str, Any], root: list) -> None:
        self.variables = variables
        self.root = root
        self.this: list | None = None
        self.index: int | None = None
        self.total: Any = None

    def focus_for_arguments(self) -> list:
        self.this = self.this if self.this is not None else self.root
        return self.this


class Compiled:
    """A node's closure, the kind of values it yields and, for values that name no resourceType,
    the FHIR type paths fhirpathpy may give them (None: not known at compile time)."""

    __slots__ = ("run", "kind", "paths")

    def __init__(self, run: Evaluator, kind: str, paths: frozenset[str] | None = UNTYPED_ONLY) -> None:
        self.run = run
        self.kind = kind
        self.paths = paths


# -- values -----------------------------------------------------------------------------------


def data(value: Any) -> Any:
    """fhirpathpy's get_data: a float read from JSON is a Decimal of its text."""
    return Decimal(str(value)) if isinstance(value, float) else value


def is_number(value: Any) -> bool:
    return isinstance(value, (int, Decimal)) and not isinstance(value, bool)


def arraify(value: Any) -> list:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def _key(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except TypeError:
        return str(value)


def uniq(values: list) -> list:
    unique: OrderedDict[str, Any] = OrderedDict()
    for value in values:
        unique[_key(value)] = value
    return list(unique.values())


def uniq_flagged(values: list, nodes: list[bool]) -> tuple[list, list[bool]]:
    """fhirpathpy's distinct over a collection: all navigated or all made values de-duplicate by
    their JSON; in a mix, navigated values key by their wrapper's identity and never merge."""
    if all(nodes) or not any(nodes):
        unique = uniq(values)
        return unique, [bool(nodes and nodes[0])] * len(unique)
    kept: OrderedDict[Any, tuple[Any, bool]] = OrderedDict()
    for position, (value, node) in enumerate(zip(values, nodes)):
        kept[("node", position) if node else _key(value)] = (value, node)
    return [v for v, _ in kept.values()], [n for _, n in kept.values()]


def result(values: list, *, navigated: bool = False) -> list:
    """The expression's value as fhirpathpy returns it: copies, floats as Decimals, and no
    primitive-extension-only objects (`_birthDate` without `birthDate`). A navigated value that is
    itself a list (JSON `[[0.0]]` read through a path) comes back as it is in the data: fhirpathpy
    converts floats only in the values and objects it visits, not inside such a list."""
    out = []
    for value in values:
        value = copy.deepcopy(value) if navigated and isinstance(value, list) else _visit(value)
        if isinstance(value, dict) and len(value) == 1 and "extension" in value:
            continue
        out.append(value)
    return out


def _visit(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {key: _visit(item) for key, item in value.items()}
    if isinstance(value, list):
        return result(value)
    return value


def drop_extension(values: list, kind: str) -> list:
    """fhirpathpy's remove_duplicate_extension: `birthDate` and `_birthDate` count as one value."""
    if kind != RAW and len(values) == 2 and isinstance(values[1], dict) and "extension" in values[1]:
        return values[:1]
    return values


def singleton_boolean(values: list, kind: str) -> Any:
    """An operand of and/or/xor/implies: [] when empty, else exactly one boolean."""
    if not values:
        return []
    if len(values) > 1:
        raise ValueError(f"expected a single boolean, got {len(values)} values")
    value = data(values[0])
    if value is True or value is False:
        return value
    raise ValueError(f"expected a boolean, got {value!r}")


def is_true(values: list) -> bool:
    """fhirpathpy's is_true (1 and Decimal 1 count, as `==` says)."""
    return len(values) == 1 and data(values[0]) == True  # noqa: E712


def _or(a: Any, b: Any) -> Any:
    if isinstance(b, list):
        return True if a is True else []
    if isinstance(a, list):
        return True if b is True else []
    return a or b


def _and(a: Any, b: Any) -> Any:
    if isinstance(b, list):
        return False if a is False else []
    if isinstance(a, list):
        return [] if b is True else False
    return a and b


def _xor(a: Any, b: Any) -> Any:
    if isinstance(a, list) or isinstance(b, list):
        return []
    return (a and not b) or (not a and b)


def _implies(a: Any, b: Any) -> Any:
    if isinstance(b, list):
        return True if a is False else []
    if isinstance(a, list):
        return True if b is True else []
    return True if a is False else (a and b)


LOGIC = {"and": _and, "or": _or, "xor": _xor, "implies": _implies}
COMPARE = {"<": lambda x, y: x < y, "<=": lambda x, y: x <= y, ">": lambda x, y: x > y, ">=": lambda x, y: x >= y}


def _check_string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _check_number(value: Any) -> Any:
    if not isinstance(value, numbers.Number):
        raise ValueError(f"expected a number, got {value!r}")
    return value


def _check_boolean(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise ValueError(f"expected a boolean, got {value!r}")


def _check_integer(value: Any) -> Any:
    if int(value) != value:
        raise ValueError(f"expected an integer, got {value!r}")
    return value


CHECKS = {"String": _check_string, "ValueSet": _check_string, "Number": _check_number,
           "Boolean": _check_boolean, "Integer": _check_integer}
