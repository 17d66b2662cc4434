"""FHIRPath's standard functions in the compiled subset: each makes the closure of one call, with
fhirpathpy's behaviour (when arguments are evaluated, what an empty input gives).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from . import ast
from .runtime import EMPTY, MIXED, NODE, RAW, Compiled, Env, Unsupported, arraify, data, is_true, uniq
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
        return Compiled(lambda env, focus: [bool(where.run(env, focus))], RAW)
    return Compiled(lambda env, focus: [bool(source.run(env, focus))], RAW)


def _empty(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 0)
    return Compiled(lambda env, focus: [not source.run(env, focus)], RAW)


def _not(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 0)

    def run(env: Env, focus: list) -> list:
        values = source.run(env, focus)
        if len(values) != 1:
            return []
        value = data(values[0])
        return [not value] if isinstance(value, bool) else [False]

    return Compiled(run, RAW)


def _where(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 1)
    criterion, compiled = compiler._macro(node.args[0], source)
    criterion_kind = compiled.kind
    navigated = criterion_kind != RAW  # fhirpathpy's wrapper of a navigated value is truthy whatever it holds

    def run(env: Env, focus: list) -> list:
        kept = []
        for index, item in enumerate(source.run(env, focus)):
            env.index = index
            values = criterion(env, item)
            if values and (navigated or values[0]):
                kept.append(item)
        return kept

    if navigated and criterion_kind != NODE:
        raise Unsupported(node.args[0], "a where() criterion that may give values of both kinds")
    return Compiled(run, source.kind, source.paths)


def _select(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 1)
    projection, compiled = compiler._macro(node.args[0], source)

    def run(env: Env, focus: list) -> list:
        found: list = []
        for index, item in enumerate(source.run(env, focus)):
            env.index = index
            found.extend(projection(env, item))
        return found

    return Compiled(run, compiled.kind, compiled.paths)


def _first(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 0)
    return Compiled(lambda env, focus: source.run(env, focus)[:1], source.kind, source.paths)


def _take(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 1)
    count = compiler._argument(node.args[0], "Integer")

    def run(env: Env, focus: list) -> list:
        values = source.run(env, focus)
        n = count(env)  # arguments are evaluated before the function looks at its input
        return values[: int(n)] if values else []

    return Compiled(run, source.kind, source.paths)


def _distinct(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 0)
    if source.kind == MIXED:
        raise Unsupported(node, "distinct() of values that may be navigated or not")
    # fhirpathpy wraps de-duplicated navigated values anew, untyped.
    return Compiled(lambda env, focus: uniq(source.run(env, focus)), source.kind, UNTYPED_ONLY)


def _iif(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 2, 3)
    (condition, _), (then, then_compiled) = compiler._macro(node.args[0], source), compiler._macro(node.args[1], source)
    otherwise, otherwise_compiled = compiler._macro(node.args[2], source) if len(node.args) == 3 else (None, None)

    def run(env: Env, focus: list) -> list:
        subject = source.run(env, focus)
        if is_true(condition(env, subject)):
            return then(env, subject)
        return otherwise(env, subject) if otherwise else []

    branches = [then_compiled] + ([otherwise_compiled] if otherwise_compiled else [])
    kinds = {branch.kind for branch in branches} - {EMPTY}
    paths = None if any(b.paths is None for b in branches) else frozenset().union(*(b.paths for b in branches))
    return Compiled(run, kinds.pop() if len(kinds) == 1 else (EMPTY if not kinds else MIXED), paths)


def _aggregate(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 1, 2)
    step, _ = compiler._macro(node.args[0], source)
    initial = compiler._nested(node.args[1], Compiled(None, MIXED, None)) if len(node.args) == 2 else None

    def run(env: Env, focus: list) -> list:
        items = source.run(env, focus)
        if initial is not None:
            start = env.focus_for_arguments()
            env.total = initial.run(env, start)
        else:
            env.total = None
        for index, item in enumerate(items):
            env.index = index
            env.total = step(env, item)
        return arraify(env.total)

    return Compiled(run, MIXED, None)


def _to_string(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 0)

    def run(env: Env, focus: list) -> list:
        values = source.run(env, focus)
        return [str(data(values[0]))] if len(values) == 1 else []

    return Compiled(run, RAW)


def _string_of(values: list) -> str:
    if len(values) == 1 and isinstance(data(values[0]), str):
        return values[0]
    raise ValueError(f"expected a single string, got {values!r}")


def _lower(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 0)

    def run(env: Env, focus: list) -> list:
        values = source.run(env, focus)
        return [_string_of(values).lower()] if values else []

    return Compiled(run, RAW)


def _contains(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 1)
    part = compiler._argument(node.args[0], "String")

    def run(env: Env, focus: list) -> list:
        values = source.run(env, focus)
        if not values:
            return []
        needle = part(env)
        return [needle in _string_of(values)]

    return Compiled(run, RAW)


def _join(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 0, 1)
    separator = compiler._argument(node.args[0], "String") if node.args else (lambda env: "")

    def run(env: Env, focus: list) -> list:
        values = source.run(env, focus)
        gap = separator(env)
        if not values:
            return []
        texts = [data(v) for v in values]
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("join() needs strings")
        return [gap.join(texts)]

    return Compiled(run, RAW)


def _count(compiler: Compiler, node: ast.Call, source: Compiled) -> Compiled:
    _arity(node, 0)
    return Compiled(lambda env, focus: [len(source.run(env, focus))], RAW)


FUNCTIONS: dict[str, Callable[[Compiler, ast.Call, Compiled], Compiled]] = {
    "exists": _exists, "empty": _empty, "not": _not, "where": _where, "select": _select, "first": _first,
    "take": _take, "distinct": _distinct, "iif": _iif, "aggregate": _aggregate, "toString": _to_string,
    "lower": _lower, "contains": _contains, "join": _join, "count": _count,
}
