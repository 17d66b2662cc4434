"""FHIRPath's standard functions in the compiled subset: each writes the source of one call, with
fhirpathpy's behaviour (when arguments are evaluated, what an empty input gives).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from . import ast
from .runtime import EMPTY, MIXED, NODE, RAW, Code, Compiled, Unsupported, arraify, data, is_true, uniq
from .typepaths import UNTYPED_ONLY

if TYPE_CHECKING:
    from .compiler import Compiler

# -- the standard functions of the subset ------------------------------------------------------


def _arity(node: ast.Call, *counts: int) -> None:
    if len(node.args) not in counts:
        raise Unsupported(node, f"{node.name}() with {len(node.args)} arguments")


def _exists(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 0, 1)
    if node.args:
        where = _where(compiler, node, source)
        return Compiled(lambda code, focus: code.assign(f"[bool({where.emit(code, focus)})]"), RAW, scalar=True)
    return Compiled(lambda code, focus: code.assign(f"[bool({source.emit(code, focus)})]"), RAW, scalar=True)


def _empty(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 0)
    return Compiled(lambda code, focus: code.assign(f"[not {source.emit(code, focus)}]"), RAW, scalar=True)


def _not(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 0)
    return Compiled(lambda code, focus: code.assign(f"_not({source.emit(code, focus)})"), RAW, scalar=True)


def _not_of(values: list) -> list:
    if len(values) != 1:
        return []
    value = data(values[0])
    return [not value] if isinstance(value, bool) else [False]


def _where(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 1)
    criterion, compiled = compiler._macro(node.args[0], source)
    criterion_kind = compiled.kind
    navigated = criterion_kind != RAW  # fhirpathpy's wrapper of a navigated value is truthy whatever it holds

    def emit(code: Code, focus: str) -> str:
        items = source.emit(code, focus)
        kept, item = code.temp(), code.temp()
        code.add(f"{kept} = []")
        with code.block(f"for index, {item} in enumerate({items}):"):
            values = criterion(code, item)
            code.add(f"if {values}{'' if navigated else f' and {values}[0]'}:", f"    {kept}.append({item})")
        return kept

    if navigated and criterion_kind != NODE:
        raise Unsupported(node.args[0], "a where() criterion that may give values of both kinds")
    return Compiled(emit, source.kind, source.paths)


def _select(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 1)
    projection, compiled = compiler._macro(node.args[0], source)

    def emit(code: Code, focus: str) -> str:
        items = source.emit(code, focus)
        found, item = code.temp(), code.temp()
        code.add(f"{found} = []")
        with code.block(f"for index, {item} in enumerate({items}):"):
            code.add(f"{found}.extend({projection(code, item)})")
        return found

    return Compiled(emit, compiled.kind, compiled.paths)


def _first(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 0)
    return Compiled(lambda code, focus: code.assign(f"{source.emit(code, focus)}[:1]"), source.kind, source.paths,
                    source.scalar)


def _take(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 1)
    count = compiler._argument(node.args[0], "Integer")

    def emit(code: Code, focus: str) -> str:
        values = source.emit(code, focus)
        n = count(code)  # arguments are evaluated before the function looks at its input
        return code.assign(f"{values}[: int({n})] if {values} else []")

    return Compiled(emit, source.kind, source.paths, source.scalar)


def _distinct(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 0)
    if source.kind == MIXED:
        raise Unsupported(node, "distinct() of values that may be navigated or not")
    # fhirpathpy wraps de-duplicated navigated values anew, untyped.
    return Compiled(lambda code, focus: code.assign(f"uniq({source.emit(code, focus)})"), source.kind, UNTYPED_ONLY)


def _iif(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 2, 3)
    (condition, _), (then, then_compiled) = compiler._macro(node.args[0], source), compiler._macro(node.args[1], source)
    otherwise, otherwise_compiled = compiler._macro(node.args[2], source) if len(node.args) == 3 else (None, None)

    def emit(code: Code, focus: str) -> str:
        subject = source.emit(code, focus)
        found = code.temp()
        with code.block(f"if is_true({condition(code, subject)}):"):
            code.add(f"{found} = {then(code, subject)}")
        with code.block("else:"):
            code.add(f"{found} = {otherwise(code, subject)}" if otherwise else f"{found} = []")
        return found

    branches = [then_compiled] + ([otherwise_compiled] if otherwise_compiled else [])
    kinds = {branch.kind for branch in branches} - {EMPTY}
    paths = None if any(b.paths is None for b in branches) else frozenset().union(*(b.paths for b in branches))
    return Compiled(emit, kinds.pop() if len(kinds) == 1 else (EMPTY if not kinds else MIXED), paths)


def _aggregate(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 1, 2)
    step, _ = compiler._macro(node.args[0], source)
    initial = compiler._nested(node.args[1], Compiled(None, MIXED, None)) if len(node.args) == 2 else None

    def emit(code: Code, focus: str) -> str:
        items = source.emit(code, focus)
        if initial is not None:
            code.this_or_root()
            start = code.assign("this")
            code.add(f"total = {initial.emit(code, start)}")
        else:
            code.add("total = None")
        item = code.temp()
        with code.block(f"for index, {item} in enumerate({items}):"):
            code.add(f"total = {step(code, item)}")
        return code.assign("arraify(total)")

    return Compiled(emit, MIXED, None)


def _to_string(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 0)

    def emit(code: Code, focus: str) -> str:
        values = source.emit(code, focus)
        return code.assign(f"[str(data({values}[0]))] if len({values}) == 1 else []")

    return Compiled(emit, RAW, scalar=True)


def _string_of(values: list) -> str:
    if len(values) == 1 and isinstance(data(values[0]), str):
        return values[0]
    raise ValueError(f"expected a single string, got {values!r}")


def _lower(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 0)

    def emit(code: Code, focus: str) -> str:
        values = source.emit(code, focus)
        return code.assign(f"[_string_of({values}).lower()] if {values} else []")

    return Compiled(emit, RAW, scalar=True)


def _contains(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 1)
    part = compiler._argument(node.args[0], "String")

    def emit(code: Code, focus: str) -> str:
        values = source.emit(code, focus)
        found = code.temp()
        with code.block(f"if not {values}:"):
            code.add(f"{found} = []")
        with code.block("else:"):
            needle = part(code)
            code.add(f"{found} = [{needle} in _string_of({values})]")
        return found

    return Compiled(emit, RAW, scalar=True)


def _join(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 0, 1)
    separator = compiler._argument(node.args[0], "String") if node.args else (lambda code: "''")

    def emit(code: Code, focus: str) -> str:
        values = source.emit(code, focus)
        gap = separator(code)
        return code.assign(f"_join({values}, {gap})")

    return Compiled(emit, RAW, scalar=True)


def _join_of(values: list, gap: str) -> list:
    if not values:
        return []
    texts = [data(v) for v in values]
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("join() needs strings")
    return [gap.join(texts)]


def _count(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 0)
    return Compiled(lambda code, focus: code.assign(f"[len({source.emit(code, focus)})]"), RAW, scalar=True)


FUNCTIONS: dict[str, Callable[[Compiler, ast.Call, Compiled], Compiled]] = {
    "exists": _exists, "empty": _empty, "not": _not, "where": _where, "select": _select, "first": _first,
    "take": _take, "distinct": _distinct, "iif": _iif, "aggregate": _aggregate, "toString": _to_string,
    "lower": _lower, "contains": _contains, "join": _join, "count": _count,
}

# What the source these functions write refers to by name.
NAMES: dict[str, Any] = {"uniq": uniq, "is_true": is_true, "arraify": arraify, "data": data,
                         "_not": _not_of, "_string_of": _string_of, "_join": _join_of}
