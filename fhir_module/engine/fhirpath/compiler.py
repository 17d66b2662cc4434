"""FHIRPath compiled to Python closures, from the strict syntax tree, once per expression.

fhirpathpy walks its parse tree on every evaluation, wrapping each value it touches; for the
knowledge's expressions that walk was most of a request's time. Here each node of the tree
becomes a closure once, and evaluation runs plain Python over the JSON values.

fhirpathpy is the reference: for every expression this compiles, the result must be exactly what
fhirpathpy returns (tests/engine/fhirpath/test_compiler_differential.py runs both on every
expression of the knowledge over every scenario and over generated resources). That includes the
places where fhirpathpy departs from the specification, kept on purpose so that compiling changes
nothing: a union of navigated values with other values does not de-duplicate the navigated ones,
`=` compares only the first items of equal-sized collections, `iif` treats `1` as true,
`toString()` of a boolean is `True`, a float read from the data is a Decimal in the result.

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
from .runtime import (
    CHECKS, COMPARE, DEFAULT_VARIABLES, EMPTY, LOGIC, MIXED, NODE, RAW, Compiled, Deferred, Env, Unsupported,
    arraify,
    data, drop_extension, is_number, result, singleton_boolean, uniq_flagged,
)
from .stdlib import FUNCTIONS
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


class Compiler:
    """Compiles syntax trees; `user_functions` maps a function name to fn(inputs, *args)."""

    def __init__(self, user_functions: Mapping[str, Callable[..., Any]],
                 argument_kinds: Mapping[str, Mapping[int, tuple[str, ...]]]) -> None:
        self.user_functions = user_functions
        self.argument_kinds = argument_kinds
        # The type paths of the focus: the root's values at the top, a per-item argument's items
        # inside it, None where fhirpathpy's leaking $this makes the focus unknown (arguments).
        self._focus: list[frozenset[str] | None] = [UNTYPED_ONLY]

    def compile(self, tree: ast.Node) -> Callable[[Any, Mapping[str, Any]], list]:
        compiled = self._node(tree)
        run, navigated = compiled.run, compiled.kind == NODE

        def evaluate(resource: Any, variables: Mapping[str, Any]) -> list:
            root = arraify(resource)
            return result(run(Env(variables, root), root), navigated=navigated)

        return evaluate

    # Each method returns a Compiled whose run(env, focus) gives the node's collection.

    def _node(self, node: ast.Node) -> Compiled:
        method = getattr(self, "_" + type(node).__name__.lower(), None)
        if method is None:
            raise Unsupported(node, type(node).__name__)
        return method(node)

    def _literal(self, node: ast.Literal) -> Compiled:
        if node.kind == ast.NULL:
            return Compiled(lambda env, focus: [], EMPTY)
        if node.kind in (ast.BOOLEAN_LITERAL, ast.STRING):
            value = node.value
        elif node.kind == ast.NUMBER:
            number = Decimal(str(node.value))
            value = int(number) if number == int(number) else number
        else:
            raise Unsupported(node, f"a {node.kind} literal")
        return Compiled(lambda env, focus: [value], RAW)

    def _variable(self, node: ast.Variable) -> Compiled:
        name = node.name

        def run(env: Env, focus: list) -> list:
            if name in env.variables:
                value = env.variables[name]
            elif name in DEFAULT_VARIABLES:  # fhirpathpy's own %context (the resource) and %ucum
                value = env.root[0] if name == "context" and env.root else DEFAULT_VARIABLES[name]
            else:
                raise ValueError(f"undefined variable %{name}")
            return value if isinstance(value, list) else arraify(value)

        return Compiled(run, RAW)

    def _special(self, node: ast.Special) -> Compiled:
        if node.source is not None:
            raise Unsupported(node, f"{node.name} after a path")
        if node.name == "$this":
            return Compiled(lambda env, focus: arraify(env.this), MIXED, self._focus[-1] if len(self._focus) > 1 else None)
        if node.name == "$index":
            return Compiled(lambda env, focus: arraify(env.index), RAW)
        if node.name == "$total":
            return Compiled(lambda env, focus: arraify(env.total), MIXED, None)
        raise Unsupported(node, node.name)

    def _source(self, node: ast.Node | None) -> Compiled:
        """What an invocation applies to: its source, else the focus."""
        if node is None:
            return Compiled(lambda env, focus: focus, MIXED, self._focus[-1])
        return self._node(node)

    def _member(self, node: ast.Member) -> Compiled:
        key = node.name
        if key[:1].isupper():
            raise Unsupported(node, f"the type name {key!r} as a path")
        source = self._source(node.source)
        if deep_choice(source.paths, key):
            raise Unsupported(node, f"the element {key!r}, which may be a choice element of what it is read from")
        run_source, extension_key = source.run, "_" + key
        is_choice = key in CHOICE_KEYS  # resolved at run time on resources, by their resourceType
        paths = child_paths(source.paths, key) if source.paths is not None else None

        def run(env: Env, focus: list) -> list:
            found: list = []
            for item in run_source(env, focus):
                if isinstance(item, dict):
                    if is_choice and "resourceType" in item:
                        value, extension = choice(item, key)
                    else:
                        value, extension = item.get(key), item.get(extension_key)
                elif key == "length":
                    value, extension = len(item), None
                else:
                    continue
                if value is not None:
                    if isinstance(value, list):
                        _no_nested_lists(value)
                        found.extend(value)
                    else:
                        found.append(value)
                if extension is not None:
                    if isinstance(extension, list):
                        _no_nested_lists(extension)
                        found.extend(extension)
                    else:
                        found.append(extension)
            return found

        return Compiled(run, NODE, paths)

    def _indexer(self, node: ast.Indexer) -> Compiled:
        source, index = self._node(node.source), self._node(node.index)
        if index.kind != RAW:
            raise Unsupported(node.index, "an index that is not a number literal or variable")

        def run(env: Env, focus: list) -> list:
            collection, position = source.run(env, focus), index.run(env, focus)
            if not position:
                return []
            at = int(data(position[0]))
            return [collection[at]] if 0 <= at < len(collection) else []

        return Compiled(run, source.kind, source.paths)

    def _unary(self, node: ast.Unary) -> Compiled:
        operand = self._node(node.operand)
        negate = node.op == "-"
        if operand.kind != RAW:
            raise Unsupported(node, f"unary {node.op} on a path")

        def run(env: Env, focus: list) -> list:
            values = list(operand.run(env, focus))
            if len(values) != 1 or not is_number(data(values[0])):
                raise ValueError(f"unary {node.op} needs one number")
            if negate:
                values[0] = -data(values[0])
            return values

        return Compiled(run, RAW if negate else operand.kind)

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
    def _operands(left: Compiled, right: Compiled, env: Env, focus: list) -> tuple[list, list]:
        # fhirpathpy evaluates both operands, each with $this set to the focus.
        env.this = focus
        a = left.run(env, focus)
        env.this = focus
        return a, right.run(env, focus)

    def _logic(self, op: str, left: Compiled, right: Compiled) -> Compiled:
        operands = self._operands

        def run(env: Env, focus: list) -> list:
            a, b = operands(left, right, env, focus)
            a, b = singleton_boolean(a, left.kind), singleton_boolean(b, right.kind)
            return arraify(LOGIC[op](a, b))

        return Compiled(run, RAW)

    def _equality(self, op: str, left: Compiled, right: Compiled) -> Compiled:
        operands, negate = self._operands, op == "!="

        checked = [side.kind != RAW for side in (left, right)]

        def run(env: Env, focus: list) -> list:
            a, b = operands(left, right, env, focus)
            if not a or not b:
                return []
            if len(a) != len(b):
                return [negate]
            for check, value in zip(checked, (a[0], b[0])):
                if check and isinstance(value, dict) and "resourceType" in value and _typed_by_fhirpathpy(value):
                    raise Deferred
            same = a[0] == b[0]
            return [not same if negate else same]

        return Compiled(run, RAW)

    def _comparison(self, op: str, left: Compiled, right: Compiled) -> Compiled:
        operands, compare = self._operands, COMPARE[op]

        def run(env: Env, focus: list) -> list:
            a, b = operands(left, right, env, focus)
            if not a or not b or a[0] is None or b[0] is None:
                return []
            a, b = drop_extension(a, left.kind), drop_extension(b, right.kind)
            if len(a) > 1 or len(b) > 1:
                raise ValueError("a comparison needs single values")
            x, y = data(a[0]), data(b[0])
            if type(x) is not type(y) and not (is_number(x) and is_number(y)):
                raise ValueError(f"cannot compare {type(x).__name__} with {type(y).__name__}")
            return [compare(x, y)]

        return Compiled(run, RAW)

    def _additive(self, op: str, left: Compiled, right: Compiled) -> Compiled:
        operands, plus = self._operands, op == "+"

        def run(env: Env, focus: list) -> list:
            a, b = operands(left, right, env, focus)
            if not a or not b:
                return []
            a, b = drop_extension(a, left.kind), drop_extension(b, right.kind)
            if len(a) != 1 or len(b) != 1:
                raise ValueError(f"'{op}' needs single values")
            x, y = data(a[0]), data(b[0])
            if plus and isinstance(x, str) and isinstance(y, str):
                return [x + y]
            if is_number(x) and is_number(y):
                return [x + y if plus else x - y]
            raise ValueError(f"cannot compute {x!r} {op} {y!r}")

        return Compiled(run, RAW)

    def _union(self, node: ast.Binary) -> Compiled:
        flagged = self._flagged(node)
        operands = _union_operands(node, self)
        kinds = {operand.kind for operand in operands} - {EMPTY}
        kind = kinds.pop() if len(kinds) == 1 else (EMPTY if not kinds else MIXED)
        # De-duplicated values are wrapped anew (untyped); kept ones keep their paths.
        paths = None if any(o.paths is None for o in operands) else UNTYPED_ONLY.union(*(o.paths for o in operands))

        def run(env: Env, focus: list) -> list:
            return flagged(env, focus)[0]

        return Compiled(run, kind, paths)

    def _flagged(self, node: ast.Node) -> Callable[[Env, list], tuple[list, list[bool]]]:
        """A union's operands with, for each value, whether fhirpathpy holds it navigated."""
        if isinstance(node, ast.Binary) and node.op == "|":
            left, right = self._flagged(node.left), self._flagged(node.right)

            def run(env: Env, focus: list) -> tuple[list, list[bool]]:
                env.this = focus
                a, a_nodes = left(env, focus)
                env.this = focus
                b, b_nodes = right(env, focus)
                return uniq_flagged(a + b, a_nodes + b_nodes)

            return run
        compiled = self._node(node)
        if compiled.kind == MIXED:
            raise Unsupported(node, "a union operand whose values may be navigated or not")
        is_node = compiled.kind == NODE
        return lambda env, focus: (values := compiled.run(env, focus), [is_node] * len(values))

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

        def run(env: Env, focus: list) -> list:
            inputs = [data(item) for item in source.run(env, focus)]
            values = [argument(env) for argument in arguments]
            return arraify(function(inputs, *values))

        return Compiled(run, RAW)

    def _argument(self, node: ast.Node, kind: str) -> Callable[[Env], Any]:
        """A typed argument, evaluated as fhirpathpy does: on the current $this (or the root),
        empty as [], more than one value an error, the value checked against its kind."""
        self._focus.append(None)
        try:
            compiled = self._node(node)
        finally:
            self._focus.pop()
        check = CHECKS[kind]

        def run(env: Env) -> Any:
            focus = env.focus_for_arguments()
            values = compiled.run(env, focus)
            if len(values) > 1:
                raise ValueError(f"expected a single {kind}, got {len(values)} values")
            return check(data(values[0])) if values else []

        return run

    def _nested(self, node: ast.Node, items: Compiled) -> Compiled:
        """A per-item argument compiled with the items' type paths as its focus."""
        self._focus.append(items.paths)
        try:
            return self._node(node)
        finally:
            self._focus.pop()

    def _macro(self, node: ast.Node, items: Compiled) -> tuple[Callable[[Env, Any], list], Compiled]:
        """An argument evaluated per item (where, select, exists, aggregate, iif): $this is the
        item. Returns the per-item evaluator and the compiled argument (its kind and paths)."""
        compiled = self._nested(node, items)
        evaluate = compiled.run

        def run(env: Env, item: Any) -> list:
            env.this = arraify(item)
            return evaluate(env, env.this)

        return run, compiled


def _typed_by_fhirpathpy(value: dict) -> bool:
    """Whether fhirpathpy's `=` reads a navigated object by its resourceType: as a Quantity, or
    failing on one that is not text."""
    kind = value["resourceType"]
    return not isinstance(kind, str) or kind in ("Quantity", "System.Quantity")


def _union_operands(node: ast.Node, compiler: Compiler) -> list[Compiled]:
    if isinstance(node, ast.Binary) and node.op == "|":
        return _union_operands(node.left, compiler) + _union_operands(node.right, compiler)
    return [compiler._node(node)]
