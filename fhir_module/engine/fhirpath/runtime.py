"""What compiled FHIRPath is made of and runs on: the compiled node, the source being written, and
fhirpathpy's value rules (a float from the data is a Decimal, how collections de-duplicate, what
counts as true).
"""

from __future__ import annotations

import copy
import json
import numbers
import re
import sys
from collections import OrderedDict
from contextlib import contextmanager
from decimal import Decimal
from functools import lru_cache
from types import CodeType
from typing import Any, Callable, Iterator, Mapping

from . import ast
from .typepaths import UNTYPED_ONLY

# What a compiled node yields, as fhirpathpy would hold it: values it navigated to (its
# ResourceNode wrappers), values it made or was given (raw), nothing, or both kinds.
NODE, RAW, EMPTY, MIXED = "node", "raw", "empty", "mixed"
DEFAULT_VARIABLES = {"context": None, "ucum": "http://unitsofmeasure.org"}
MISSING = object()  # what a compiled expression's `lookup` gives for a variable it does not define


def lookup_in(variables: Mapping[str, Any]) -> Callable[[str], Any]:
    """The `lookup` of a compiled expression that reads its variables from a mapping."""
    return lambda name: variables[name] if name in variables else MISSING


class Deferred(Exception):
    """The data has a shape whose meaning the compiled code does not model (fhirpathpy types a
    navigated object by its `resourceType`): this one evaluation is the reference's to make."""


class Unsupported(ValueError):
    """The expression uses FHIRPath outside the compiled subset."""

    def __init__(self, node: ast.Node, what: str) -> None:
        super().__init__(f"{what} (at offset {node.start}) is outside the compiled FHIRPath subset")
        self.offset = node.start


class Compiled:
    """A compiled node: `emit(code, focus)` writes the statements computing its collection (the
    focus given by the name that holds it) and returns the name that holds the collection; the kind
    of values it yields; for values that name no resourceType, the FHIR type paths fhirpathpy may
    give them (None: not known at compile time); and whether it is `scalar`: a new list of strings,
    numbers and booleans made by the expression, which fhirpathpy's result would give unchanged."""

    __slots__ = ("emit", "kind", "paths", "scalar")

    def __init__(self, emit: Callable[["Code", str], str], kind: str, paths: frozenset[str] | None = UNTYPED_ONLY,
                 scalar: bool = False) -> None:
        self.emit = emit
        self.kind = kind
        self.paths = paths
        self.scalar = scalar


class Code:
    """The Python source of one compiled expression, written statement by statement, and the
    objects it refers to by name.

    The expression's own strings (its literals, member and variable names) are written as stand-ins,
    so that expressions of one shape (`%order.status = 'active'`, `%order.intent = 'order'`) share
    the source, and Python compiles it once: each expression's code is the shared code with its own
    strings put in place of the stand-ins (`function`). Compiling was most of a start's compile cost."""

    def __init__(self, names: Mapping[str, Any]) -> None:
        self.lines: list[str] = []
        self.names = dict(names)
        self.variables: dict[str, str] = {}  # the local name holding each %variable's value
        self.texts: list[str] = []  # the expression's strings, in the order written: stand-in n is texts[n]
        self._depth = 1
        self._count = 0

    def temp(self) -> str:
        self._count += 1
        return f"_{self._count}"

    def add(self, *lines: str) -> None:
        self.lines.extend("    " * self._depth + line for line in lines)

    def assign(self, expression: str) -> str:
        """A new name holding the value of the Python `expression`."""
        name = self.temp()
        self.add(f"{name} = {expression}")
        return name

    def this_or_root(self) -> None:
        """`this` made the current $this, or the root outside any per-item argument: what
        fhirpathpy evaluates a function's argument on."""
        self.add("if this is None:", "    this = root")

    def text(self, value: str) -> str:
        """How the source writes a string of the expression: the literal of a new stand-in (one for
        each use, so that the shape does not depend on which strings are equal)."""
        self.texts.append(value)
        return repr(_stand_in(len(self.texts) - 1))

    def constant(self, value: Any) -> str:
        """How the source names a value: a literal for text (see `text`), integers and booleans."""
        if type(value) is str:
            return self.text(value)
        if type(value) in (int, bool):
            return repr(value)
        name = f"_k{len(self.names)}"
        self.names[name] = value
        return name

    @contextmanager
    def block(self, header: str) -> Iterator[None]:
        self.add(header)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    @property
    def shape(self) -> str:
        """The source with the expression's strings as stand-ins."""
        return "\n".join(self.lines)

    @property
    def source(self) -> str:
        """The source with the expression's own strings: what `function` compiles, in effect."""
        return _STAND_IN_LITERAL.sub(lambda found: repr(self.texts[int(found.group(1))]), self.shape)

    def function(self, name: str, parameters: str, filename: str = "") -> Callable[..., Any]:
        filename = filename or f"<fhirpath {name}>"
        values = {_stand_in(position): _as_compiled(value) for position, value in enumerate(self.texts)}
        code = _bound(_compiled_shape(f"def {name}({parameters}):\n{self.shape}\n"), values, filename)
        if any(type(constant) is str and _STAND_IN in constant for constant in _constants(code.co_consts)):
            # A stand-in that Python's compiler folded into another constant, or one of the
            # expression's strings that holds the stand-in character: compiled as written.
            code = compile(f"def {name}({parameters}):\n{self.source}\n", filename, "exec")
        namespace = dict(self.names)
        exec(code, namespace)  # noqa: S102 - source generated here
        return namespace[name]


# A stand-in is this character, a number and this character again: the compiler writes no such string.
_STAND_IN = "\x00"
_STAND_IN_LITERAL = re.compile(r"'\\x00(\d+)\\x00'")


def _stand_in(position: int) -> str:
    return f"{_STAND_IN}{position}{_STAND_IN}"


@lru_cache(maxsize=1024)
def _compiled_shape(source: str) -> CodeType:
    """The compiled code of a shape of source (88 shapes for the 219 expressions of the built-in modules)."""
    return compile(source, "<fhirpath>", "exec")


def _as_compiled(value: str) -> str:
    """A string as Python's compiler keeps a constant: interned when made of ASCII letters, digits and `_`."""
    return sys.intern(value) if value.isascii() and (not value or value.replace("_", "a").isalnum()) else value


def _bound(code: CodeType, values: Mapping[str, str], filename: str) -> CodeType:
    """`code`, and the code inside it, with each stand-in constant replaced by its value, named `filename`."""
    return code.replace(co_consts=tuple(_bound_constant(constant, values, filename) for constant in code.co_consts),
                        co_filename=filename)


def _bound_constant(constant: Any, values: Mapping[str, str], filename: str) -> Any:
    if type(constant) is str:
        return values.get(constant, constant)
    if type(constant) in (tuple, frozenset):
        return type(constant)(_bound_constant(item, values, filename) for item in constant)
    if type(constant) is CodeType:
        return _bound(constant, values, filename)
    return constant


def _constants(constants: tuple | frozenset) -> Iterator[Any]:
    """Every constant among `constants`, in the code, tuples and frozensets inside them too."""
    for constant in constants:
        if type(constant) is CodeType:
            yield from _constants(constant.co_consts)
        elif type(constant) in (tuple, frozenset):
            yield from _constants(constant)
        else:
            yield constant


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
        if type(value) in _KEPT:
            out.append(value)
            continue
        value = copy.deepcopy(value) if navigated and isinstance(value, list) else _visit(value)
        # `in` first: a lazily copied fact (see _visit) answers it without working anything out.
        if isinstance(value, dict) and "extension" in value and len(value) == 1:
            continue
        out.append(value)
    return out


# Values a result holds as they are (checked by exact type: a subclass takes the long way).
_KEPT = frozenset({str, int, bool, Decimal, type(None)})


def _visit(value: Any) -> Any:
    """A value of a type outside _KEPT (its callers have looked), as fhirpathpy returns it. An
    object that works out some of its items on first read (facts._TherapyFact) copies itself with
    `fhirpath_copy(_item)`, those items converted by `_item` when they are worked out."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        if type(value) is not dict:
            copy_lazily = getattr(value, "fhirpath_copy", None)
            if copy_lazily is not None:
                return copy_lazily(_item)
        return {key: item if type(item) in _KEPT else _visit(item) for key, item in value.items()}
    if isinstance(value, list):
        return result(value)
    return value


def _item(value: Any) -> Any:
    """A value inside a result's object, as fhirpathpy returns it."""
    return value if type(value) in _KEPT else _visit(value)


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
