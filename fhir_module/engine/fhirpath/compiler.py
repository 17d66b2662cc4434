"""FHIRPath compiled to Python source, from the strict syntax tree, once per expression.

fhirpathpy walks its parse tree on every evaluation, wrapping each value it touches; for the
knowledge's expressions that walk was most of a request's time. Here each expression becomes the
source of one Python function, compiled once: an evaluation is one call running plain Python over
the JSON values, with the evaluation's state ($this, $index, $total) in local variables.

fhirpathpy is the reference: for every expression this compiles, the result must be exactly what
fhirpathpy returns (tests/engine/fhirpath/test_compiler_differential.py runs both on every
expression of the knowledge over every scenario and over generated resources). That includes the
places where fhirpathpy departs from the specification, kept on purpose so that compiling changes
nothing: a union of navigated values with other values does not de-duplicate the navigated ones,
`=` compares only the first items of equal-sized collections, `iif` treats `1` as true,
`toString()` of a boolean is `True`, a float read from the data is a Decimal in the result, and
`$this` leaks as fhirpathpy's context dict lets it (an operand, a per-item argument or a function
argument sets it, and it stays set for what is evaluated after).

The subset: literals (null, boolean, string, number), `%variables`, member navigation (choice
elements only on a value read from a variable, a function or the root), `$this`/`$index`/
`$total`, indexers, unary minus, `and or xor implies`, `= != < <= > >=`, `+ -`, `|`, and the
functions in `stdlib.FUNCTIONS` plus the engine's own (called through `user_functions`). Anything else
raises `Unsupported` at compile time, naming what and where; the caller then decides (the engine
keeps fhirpathpy for that expression, explicitly).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable, Mapping

from . import ast
from .analysis import variables_used
from .runtime import (
    CHECKS, DEFAULT_VARIABLES, EMPTY, MISSING, MIXED, NODE, RAW, Code, Compiled, Deferred, Unsupported, arraify, data,
    drop_extension, is_number, result, singleton_boolean, uniq_flagged,
)
from .stdlib import FUNCTIONS, NAMES
from .typepaths import (
    ARITHMETIC_CONVERTED, CHOICE_KEYS, EQUALITY_CONVERTED, UNTYPED_ONLY, child_paths, choice, deep_choice,
)

__all__ = ["Compiler", "Unsupported"]


def _no_nested_lists(values: list) -> None:
    """An array inside an array (no FHIR JSON has one) navigates, in fhirpathpy, to an item that
    is itself a list, which it returns and passes on unconverted: that evaluation is its to make."""
    for value in values:
        if type(value) is list:
            raise Deferred("an array inside an array")


def _typed_by_fhirpathpy(value: dict) -> bool:
    """Whether fhirpathpy's `=` reads a navigated object by its resourceType: as a Quantity, or
    failing on one that is not text."""
    kind = value["resourceType"]
    return not isinstance(kind, str) or kind in ("Quantity", "System.Quantity")


def _variable(value: Any, name: str, root: list) -> list:
    """A variable's collection where the value given is not a list."""
    if value is not MISSING:
        return arraify(value)
    if name in DEFAULT_VARIABLES:  # fhirpathpy's own %context (the resource) and %ucum
        value = (root[0] if root else None) if name == "context" else DEFAULT_VARIABLES[name]
        return arraify(value)
    raise ValueError(f"undefined variable %{name}")


def _equality_deferred(a: Any, b: Any, check_a: bool, check_b: bool) -> None:
    for check, value in ((check_a, a), (check_b, b)):
        if check and isinstance(value, dict) and "resourceType" in value and _typed_by_fhirpathpy(value):
            raise Deferred


def _compare_operands(a: list, b: list, a_kind: str, b_kind: str) -> tuple[Any, Any]:
    """The single values `<`, `+` and `-` work on, as fhirpathpy reads them."""
    a, b = drop_extension(a, a_kind), drop_extension(b, b_kind)
    if len(a) > 1 or len(b) > 1:
        raise ValueError("a comparison needs single values")
    x, y = data(a[0]), data(b[0])
    if type(x) is not type(y) and not (is_number(x) and is_number(y)):
        raise ValueError(f"cannot compare {type(x).__name__} with {type(y).__name__}")
    return x, y


def _add(a: list, b: list, a_kind: str, b_kind: str, plus: bool, op: str) -> list:
    a, b = drop_extension(a, a_kind), drop_extension(b, b_kind)
    if len(a) != 1 or len(b) != 1:
        raise ValueError(f"'{op}' needs single values")
    x, y = data(a[0]), data(b[0])
    if plus and isinstance(x, str) and isinstance(y, str):
        return [x + y]
    if is_number(x) and is_number(y):
        return [x + y if plus else x - y]
    raise ValueError(f"cannot compute {x!r} {op} {y!r}")


def _unary_value(values: list, op: str, negate: bool) -> list:
    values = list(values)
    if len(values) != 1 or not is_number(data(values[0])):
        raise ValueError(f"unary {op} needs one number")
    if negate:
        values[0] = -data(values[0])
    return values


def _and(a: Any, b: Any) -> Any:
    if isinstance(b, list):
        return [False] if a is False else []
    if isinstance(a, list):
        return [] if b is True else [False]
    return [a and b]


def _or(a: Any, b: Any) -> Any:
    if isinstance(b, list):
        return [True] if a is True else []
    if isinstance(a, list):
        return [True] if b is True else []
    return [a or b]


def _xor(a: Any, b: Any) -> Any:
    if isinstance(a, list) or isinstance(b, list):
        return []
    return [(a and not b) or (not a and b)]


def _implies(a: Any, b: Any) -> Any:
    if isinstance(b, list):
        return [True] if a is False else []
    if isinstance(a, list):
        return [True] if b is True else []
    return [True if a is False else (a and b)]


_SAME_TYPE = frozenset({int, str, Decimal, bool})
_NUMBERS = frozenset({int, Decimal})
_LOGIC = {"and": "_and", "or": "_or", "xor": "_xor", "implies": "_implies"}

# What the generated source refers to by name.
_GLOBALS: dict[str, Any] = {
    "ValueError": ValueError, "isinstance": isinstance, "len": len, "list": list,
    "dict": dict, "int": int, "bool": bool, "str": str, "type": type, "enumerate": enumerate, "map": map,
    "result": result, "choice": choice, "singleton_boolean": singleton_boolean,
    "uniq_flagged": uniq_flagged, "CHECKS": CHECKS,
    "_no_nested_lists": _no_nested_lists, "_variable": _variable, "_equality_deferred": _equality_deferred,
    "_compare_operands": _compare_operands, "_add": _add, "_unary_value": _unary_value,
    "_and": _and, "_or": _or, "_xor": _xor, "_implies": _implies, "_SAME_TYPE": _SAME_TYPE, "_NUMBERS": _NUMBERS,
    **NAMES,
}


class Compiler:
    """Compiles syntax trees; `user_functions` maps a function name to fn(inputs, *args)."""

    def __init__(self, user_functions: Mapping[str, Callable[..., Any]],
                 argument_kinds: Mapping[str, Mapping[int, tuple[str, ...]]]) -> None:
        self.user_functions = user_functions
        self.argument_kinds = argument_kinds
        # The type paths of the focus: the root's values at the top, a per-item argument's items
        # inside it, None where fhirpathpy's leaking $this makes the focus unknown (arguments).
        self._focus: list[frozenset[str] | None] = [UNTYPED_ONLY]

    def compile(self, tree: ast.Node, text: str = "") -> Callable[[Any, Callable[[str], Any]], list]:
        """The function `evaluate(resource, lookup)`, from generated Python source. `lookup(name)` gives the
        value of `%name`, or MISSING; each variable is looked up once, before anything is evaluated,
        in the order the expression first names them (as a scope hands them over, failures and all).
        `text`, the expression's FHIRPath, names the function's code: a profile or a traceback then
        says which expression it is, where every one would otherwise be `<fhirpath evaluate>`."""
        compiled = self._node(tree)
        code = Code(_GLOBALS)
        code.add("root = resource if isinstance(resource, list) else ([] if resource is None else [resource])",
                 "this = index = total = None")
        for position, name in enumerate(dict.fromkeys(node.name for node in variables_used(tree))):
            code.variables[name] = f"v{position}"
            code.add(f"v{position} = lookup({code.text(name)})")
        values = compiled.emit(code, "root")
        if compiled.scalar:  # made here, of strings, numbers and booleans: nothing to convert or copy
            code.add(f"return {values}")
        else:
            code.add(f"return result({values}, navigated={compiled.kind == NODE})")
        return code.function("evaluate", "resource, lookup", f"<fhirpath {text}>" if text else "<fhirpath evaluate>")

    # Each method returns a Compiled whose emit(code, focus) writes the statements that compute
    # the node's collection (with `focus` the name of the focus) and returns the name holding it.

    def _node(self, node: ast.Node) -> Compiled:
        method = getattr(self, "_" + type(node).__name__.lower(), None)
        if method is None:
            raise Unsupported(node, type(node).__name__)
        return method(node)

    def _literal(self, node: ast.Literal) -> Compiled:
        if node.kind == ast.NULL:
            return Compiled(lambda code, focus: code.assign("[]"), EMPTY, scalar=True)
        if node.kind not in _VALUE_LITERALS:
            raise Unsupported(node, f"a {node.kind} literal")
        value = _literal_value(node)
        return Compiled(lambda code, focus: code.assign(f"[{code.constant(value)}]"), RAW, scalar=True)

    def _variable(self, node: ast.Variable) -> Compiled:
        name = node.name

        def emit(code: Code, focus: str) -> str:
            value = code.variables[name]
            return code.assign(f"{value} if isinstance({value}, list) else _variable({value}, {code.text(name)}, root)")

        return Compiled(emit, RAW)

    def _special(self, node: ast.Special) -> Compiled:
        if node.source is not None:
            raise Unsupported(node, f"{node.name} after a path")
        if node.name == "$this":
            return Compiled(lambda code, focus: code.assign("arraify(this)"), MIXED,
                            self._focus[-1] if len(self._focus) > 1 else None)
        if node.name == "$index":
            return Compiled(lambda code, focus: code.assign("arraify(index)"), RAW)
        if node.name == "$total":
            return Compiled(lambda code, focus: code.assign("arraify(total)"), MIXED, None)
        raise Unsupported(node, node.name)

    def _source(self, node: ast.Node | None) -> Compiled:
        """What an invocation applies to: its source, else the focus."""
        if node is None:
            return Compiled(lambda code, focus: focus, MIXED, self._focus[-1])
        return self._node(node)

    def _member(self, node: ast.Member) -> Compiled:
        key = node.name
        if key[:1].isupper():
            raise Unsupported(node, f"the type name {key!r} as a path")
        source = self._source(node.source)
        if deep_choice(source.paths, key):
            raise Unsupported(node, f"the element {key!r}, which may be a choice element of what it is read from")
        is_choice = key in CHOICE_KEYS  # resolved at run time on resources, by their resourceType
        paths = child_paths(source.paths, key) if source.paths is not None else None

        def emit(code: Code, focus: str) -> str:
            items = source.emit(code, focus)
            found, item, value, extension = code.temp(), code.temp(), code.temp(), code.temp()
            name, extension_name = code.text(key), code.text("_" + key)
            code.add(f"{found} = []")
            with code.block(f"for {item} in {items}:"):
                with code.block(f"if isinstance({item}, dict):"):
                    if is_choice:
                        code.add(f"if 'resourceType' in {item}:",
                                 f"    {value}, {extension} = choice({item}, {name})",
                                 "else:",
                                 f"    {value}, {extension} = {item}.get({name}), {item}.get({extension_name})")
                    else:
                        code.add(f"{value}, {extension} = {item}.get({name}), {item}.get({extension_name})")
                if key == "length":
                    code.add("else:", f"    {value}, {extension} = len({item}), None")
                else:
                    code.add("else:", "    continue")
                for part in (value, extension):
                    code.add(f"if {part} is not None:",
                             f"    if isinstance({part}, list):",
                             f"        _no_nested_lists({part})",
                             f"        {found}.extend({part})",
                             "    else:",
                             f"        {found}.append({part})")
            return found

        return Compiled(emit, NODE, paths)

    def _indexer(self, node: ast.Indexer) -> Compiled:
        source, index = self._node(node.source), self._node(node.index)
        if index.kind != RAW:
            raise Unsupported(node.index, "an index that is not a number literal or variable")

        def emit(code: Code, focus: str) -> str:
            collection = source.emit(code, focus)
            position = index.emit(code, focus)
            at, found = code.temp(), code.temp()
            code.add(f"if not {position}:",
                     f"    {found} = []",
                     "else:",
                     f"    {at} = int(data({position}[0]))",
                     f"    {found} = [{collection}[{at}]] if 0 <= {at} < len({collection}) else []")
            return found

        return Compiled(emit, source.kind, source.paths)

    def _unary(self, node: ast.Unary) -> Compiled:
        operand = self._node(node.operand)
        negate = node.op == "-"
        if operand.kind != RAW:
            raise Unsupported(node, f"unary {node.op} on a path")

        def emit(code: Code, focus: str) -> str:
            values = operand.emit(code, focus)
            return code.assign(f"_unary_value({values}, {node.op!r}, {negate})")

        return Compiled(emit, RAW if negate else operand.kind, scalar=negate or operand.scalar)

    def _typeoperation(self, node: ast.TypeOperation) -> Compiled:
        raise Unsupported(node, f"'{node.op} {node.type_name}'")

    # -- operators --------------------------------------------------------------------------

    def _binary(self, node: ast.Binary) -> Compiled:
        if node.op == "|":
            return self._union(node)
        left, right = self._node(node.left), self._node(node.right)
        if node.op in ("and", "or", "xor", "implies"):
            return self._logic(node.op, left, right)
        if node.op in ("=", "!="):
            self._plain_operands(node, EQUALITY_CONVERTED, left, right)
            return self._equality(node.op, left, right)
        if node.op in ("<", "<=", ">", ">="):
            return self._comparison(node.op, left, right)
        if node.op in ("+", "-"):
            self._plain_operands(node, ARITHMETIC_CONVERTED, left, right)
            return self._additive(node.op, left, right)
        raise Unsupported(node, f"the operator {node.op!r}")

    @staticmethod
    def _plain_operands(node: ast.Binary, converted: frozenset[str], *operands: Compiled) -> None:
        """fhirpathpy converts navigated quantities (`=`) and dates (`+`, `-`) by their FHIR type;
        the compiled subset keeps to operands that need no such conversion."""
        for side, operand in zip((node.left, node.right), operands):
            if operand.kind in (RAW, EMPTY):
                continue
            if operand.paths is None or operand.paths & converted:
                raise Unsupported(side, f"'{node.op}' on values that fhirpathpy may convert by their FHIR type")

    @staticmethod
    def _operands(code: Code, left: Compiled, right: Compiled, focus: str) -> tuple[str, str]:
        # fhirpathpy evaluates both operands, each with $this set to the focus.
        code.add(f"this = {focus}")
        a = left.emit(code, focus)
        code.add(f"this = {focus}")
        return a, right.emit(code, focus)

    def _logic(self, op: str, left: Compiled, right: Compiled) -> Compiled:
        def emit(code: Code, focus: str) -> str:
            a, b = self._operands(code, left, right, focus)
            x, y = (code.assign(f"{side}[0] if len({side}) == 1 and ({side}[0] is True or {side}[0] is False) "
                                f"else singleton_boolean({side}, None)") for side in (a, b))
            if op in ("and", "or"):  # two booleans, the common case, without a call
                return code.assign(f"[{x} {op} {y}] if type({x}) is bool and type({y}) is bool "
                                   f"else {_LOGIC[op]}({x}, {y})")
            return code.assign(f"{_LOGIC[op]}({x}, {y})")

        return Compiled(emit, RAW, scalar=True)

    def _equality(self, op: str, left: Compiled, right: Compiled) -> Compiled:
        negate = op == "!="
        check_a, check_b = left.kind != RAW, right.kind != RAW

        def emit(code: Code, focus: str) -> str:
            a, b = self._operands(code, left, right, focus)
            found = code.temp()
            code.add(f"if not {a} or not {b}:",
                     f"    {found} = []",
                     f"elif len({a}) != len({b}):",
                     f"    {found} = [{negate}]",
                     "else:")
            if check_a or check_b:
                code.add(f"    _equality_deferred({a}[0], {b}[0], {check_a}, {check_b})")
            code.add(f"    {found} = [{'not ' if negate else ''}({a}[0] == {b}[0])]")
            return found

        return Compiled(emit, RAW, scalar=True)

    def _comparison(self, op: str, left: Compiled, right: Compiled) -> Compiled:
        def emit(code: Code, focus: str) -> str:
            a, b = self._operands(code, left, right, focus)
            found, x, y = code.temp(), code.temp(), code.temp()
            # Two single values of one plain type, or two numbers, compare as they are (the
            # helper's checks and conversions change nothing for them).
            code.add(f"if not {a} or not {b} or {a}[0] is None or {b}[0] is None:",
                     f"    {found} = []",
                     f"elif len({a}) == 1 == len({b}) and ((type({a}[0]) is type({b}[0]) and type({a}[0]) in _SAME_TYPE)"
                     f" or (type({a}[0]) in _NUMBERS and type({b}[0]) in _NUMBERS)):",
                     f"    {found} = [{a}[0] {op} {b}[0]]",
                     "else:",
                     f"    {x}, {y} = _compare_operands({a}, {b}, {left.kind!r}, {right.kind!r})",
                     f"    {found} = [{x} {op} {y}]")
            return found

        return Compiled(emit, RAW, scalar=True)

    def _additive(self, op: str, left: Compiled, right: Compiled) -> Compiled:
        def emit(code: Code, focus: str) -> str:
            a, b = self._operands(code, left, right, focus)
            return code.assign(f"_add({a}, {b}, {left.kind!r}, {right.kind!r}, {op == '+'}, {op!r}) "
                               f"if {a} and {b} else []")

        return Compiled(emit, RAW, scalar=True)

    def _union(self, node: ast.Binary) -> Compiled:
        flagged = self._flagged(node)
        operands = _union_operands(node, self)
        kinds = {operand.kind for operand in operands} - {EMPTY}
        kind = kinds.pop() if len(kinds) == 1 else (EMPTY if not kinds else MIXED)
        # De-duplicated values are wrapped anew (untyped); kept ones keep their paths.
        paths = None if any(o.paths is None for o in operands) else UNTYPED_ONLY.union(*(o.paths for o in operands))

        def emit(code: Code, focus: str) -> str:
            return flagged(code, focus)[0]

        return Compiled(emit, kind, paths)

    def _flagged(self, node: ast.Node) -> Callable[[Code, str], tuple[str, str]]:
        """A union's operands with, for each value, whether fhirpathpy holds it navigated."""
        if isinstance(node, ast.Binary) and node.op == "|":
            left, right = self._flagged(node.left), self._flagged(node.right)

            def emit(code: Code, focus: str) -> tuple[str, str]:
                code.add(f"this = {focus}")
                a, a_nodes = left(code, focus)
                code.add(f"this = {focus}")
                b, b_nodes = right(code, focus)
                values, nodes = code.temp(), code.temp()
                code.add(f"{values}, {nodes} = uniq_flagged({a} + {b}, {a_nodes} + {b_nodes})")
                return values, nodes

            return emit
        compiled = self._node(node)
        if compiled.kind == MIXED:
            raise Unsupported(node, "a union operand whose values may be navigated or not")
        is_node = compiled.kind == NODE

        def operand(code: Code, focus: str) -> tuple[str, str]:
            values = compiled.emit(code, focus)
            return values, code.assign(f"[{is_node}] * len({values})")

        return operand

    # -- functions ----------------------------------------------------------------------------

    def _call(self, node: ast.Call) -> Compiled:
        source = self._source(node.source)
        if node.name in self.user_functions:
            return self._user_call(node, source)
        make = FUNCTIONS.get(node.name)
        if make is None:
            raise Unsupported(node, f"the function {node.name}()")
        return make(self, node, source)

    def _user_call(self, node: ast.Call, source: Compiled) -> Compiled:
        kinds = self.argument_kinds[node.name].get(len(node.args))
        if kinds is None:
            raise Unsupported(node, f"{node.name}() with {len(node.args)} arguments")
        arguments = [self._argument(arg, kind) for arg, kind in zip(node.args, kinds)]
        function = self.user_functions[node.name]

        def emit(code: Code, focus: str) -> str:
            items = source.emit(code, focus)
            inputs = code.assign(f"list(map(data, {items}))")
            values = [argument(code) for argument in arguments]
            found = code.assign(f"{code.constant(function)}({', '.join([inputs, *values])})")
            return code.assign(f"{found} if isinstance({found}, list) else arraify({found})")

        return Compiled(emit, RAW)

    def _argument(self, node: ast.Node, kind: str) -> Callable[[Code], str]:
        """A typed argument, evaluated as fhirpathpy does: on the current $this (or the root),
        empty as [], more than one value an error, the value checked against its kind."""
        self._focus.append(None)
        try:
            compiled = self._node(node)
        finally:
            self._focus.pop()
        folded = _folded_argument(node, kind)

        def emit(code: Code) -> str:
            code.this_or_root()
            if folded is not _NOT_FOLDED:
                return code.constant(folded)
            focus = code.assign("this")
            values = compiled.emit(code, focus)
            code.add(f"if len({values}) > 1:",
                     f"    raise ValueError(f'expected a single {kind}, got {{len({values})}} values')")
            return code.assign(f"CHECKS[{kind!r}](data({values}[0])) if {values} else []")

        return emit

    def _nested(self, node: ast.Node, items: Compiled) -> Compiled:
        """A per-item argument compiled with the items' type paths as its focus."""
        self._focus.append(items.paths)
        try:
            return self._node(node)
        finally:
            self._focus.pop()

    def _macro(self, node: ast.Node, items: Compiled) -> tuple[Callable[[Code, str], str], Compiled]:
        """An argument evaluated per item (where, select, exists, aggregate, iif): $this is the
        item. Returns the emitter of its per-item evaluation, given the name of the item, and the
        compiled argument (its kind and paths)."""
        compiled = self._nested(node, items)

        def emit(code: Code, item: str) -> str:
            # The focus is its own name: `this` may be set again inside the argument.
            focus = code.assign(f"arraify({item})")
            code.add(f"this = {focus}")
            return compiled.emit(code, focus)

        return emit, compiled


_VALUE_LITERALS = (ast.BOOLEAN_LITERAL, ast.STRING, ast.NUMBER)
_NOT_FOLDED = object()


def _literal_value(node: ast.Literal) -> Any:
    """The value of a boolean, string or number literal (a whole number as an int)."""
    if node.kind != ast.NUMBER:
        return node.value
    number = Decimal(str(node.value))
    return int(number) if number == int(number) else number


def _folded_argument(node: ast.Node, kind: str) -> Any:
    """A literal argument's checked value, worked out once; _NOT_FOLDED for any other argument, or
    a literal that fails its check (which then fails as it is evaluated, as fhirpathpy's does)."""
    if not isinstance(node, ast.Literal) or node.kind not in _VALUE_LITERALS:
        return _NOT_FOLDED
    try:
        return CHECKS[kind](data(_literal_value(node)))
    except Exception:  # noqa: BLE001 - said when evaluated
        return _NOT_FOLDED


def _union_operands(node: ast.Node, compiler: Compiler) -> list[Compiled]:
    if isinstance(node, ast.Binary) and node.op == "|":
        return _union_operands(node.left, compiler) + _union_operands(node.right, compiler)
    return [compiler._node(node)]
