"""What can be known of an expression before it runs: the variables it reads, and whether every
function it calls exists, with an accepted number of arguments of the right kind.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Mapping

from . import ast
from .functions import BOOLEAN, IDENTIFIER, INTEGER, NUMBER, STRING, TYPE_SPECIFIER, VALUESET, Function


@dataclass(frozen=True)
class Problem:
    """Something wrong at `offset` (0-based) in the expression's text."""

    offset: int
    message: str


def variables_used(tree: ast.Node) -> list[ast.Variable]:
    """Every `%name` the expression reads, in source order (repeats included)."""
    return [node for node in tree.walk() if isinstance(node, ast.Variable)]


def valueset_arguments(tree: ast.Node, functions: Mapping[str, Function]) -> list[ast.Literal]:
    """The string literals passed where a function takes a value set (for resolving them)."""
    found = []
    for node in tree.walk():
        if isinstance(node, ast.Call) and node.name in functions and functions[node.name].accepts(len(node.args)):
            for kind, arg in zip(functions[node.name].kinds(len(node.args)), node.args):
                if kind == VALUESET and isinstance(arg, ast.Literal) and arg.kind == ast.STRING:
                    found.append(arg)
    return found


_LITERAL_KINDS = {
    STRING: ((ast.STRING,), "a string"),
    VALUESET: ((ast.STRING,), "a value set id or URL in quotes"),
    INTEGER: ((ast.NUMBER,), "an integer"),
    NUMBER: ((ast.NUMBER,), "a number"),
    BOOLEAN: ((ast.BOOLEAN_LITERAL,), "true or false"),
}


def _is_type_name(node: ast.Node) -> bool:
    return isinstance(node, ast.Member) and (node.source is None or _is_type_name(node.source))


def _argument_problem(function: Function, position: int, kind: str, arg: ast.Node) -> Problem | None:
    label = f"argument {position} of {function.name}()"
    if kind == TYPE_SPECIFIER and not _is_type_name(arg):
        return Problem(arg.start, f"{label} must be a type name (such as Quantity or FHIR.Coding)")
    if kind == IDENTIFIER and not (isinstance(arg, ast.Member) and arg.source is None):
        return Problem(arg.start, f"{label} must be a name")
    if kind == VALUESET and not (isinstance(arg, ast.Literal) and arg.kind == ast.STRING):
        return Problem(arg.start, f"{label} must be a value set id or URL written in quotes, so that it "
                                  "can be checked against the knowledge")
    if kind in _LITERAL_KINDS and isinstance(arg, ast.Literal) and arg.kind != ast.NULL:
        accepted, wanted = _LITERAL_KINDS[kind]
        integer = kind != INTEGER or isinstance(arg.value, int)
        if arg.kind not in accepted or not integer:
            return Problem(arg.start, f"{label} must be {wanted}")
    return None


def call_problems(tree: ast.Node, functions: Mapping[str, Function]) -> list[Problem]:
    """Unknown functions, wrong numbers of arguments, literal arguments of the wrong kind, and
    `$total` outside aggregate()."""
    problems: list[Problem] = []
    for node in tree.walk():
        if not isinstance(node, ast.Call):
            continue
        function = functions.get(node.name)
        if function is None:
            near = difflib.get_close_matches(node.name, list(functions), n=1)
            hint = f" (did you mean {near[0]}()?)" if near else ""
            problems.append(Problem(node.name_start, f"unknown function {node.name}(){hint}"))
            continue
        if not function.accepts(len(node.args)):
            problems.append(Problem(node.name_start, f"{node.name}() takes {function.describe_arity()}, "
                                                     f"not {len(node.args)}"))
            continue
        for position, (kind, arg) in enumerate(zip(function.kinds(len(node.args)), node.args), start=1):
            problem = _argument_problem(function, position, kind, arg)
            if problem is not None:
                problems.append(problem)
    problems += _stray_totals(tree, inside_aggregate=False)
    return problems


def _stray_totals(node: ast.Node, inside_aggregate: bool) -> list[Problem]:
    if isinstance(node, ast.Special) and node.name == "$total" and not inside_aggregate:
        return [Problem(node.start, "$total is only defined inside aggregate()")]
    found = []
    for child in node.children():
        inside = inside_aggregate or (isinstance(node, ast.Call) and node.name == "aggregate"
                                       and any(child is arg for arg in node.args))
        found += _stray_totals(child, inside)
    return found


# Filters whose criteria fhirpathpy takes as true when the value is present, `false` included.
_PRESENCE_TRAPS = ("where", "exists")


def _member_path(node: ast.Node) -> str | None:
    """`a.b.c` for a chain of member names on the focus; None for anything else."""
    if isinstance(node, ast.Member):
        if node.source is None:
            return node.name
        source = _member_path(node.source)
        return f"{source}.{node.name}" if source else None
    return None


def presence_traps(tree: ast.Node) -> list[Problem]:
    """`where(flag)` and `exists(flag)` keep every item whose `flag` is present, false ones too, in
    fhirpathpy (and so in the compiled code that agrees with it): the criterion must compare."""
    found = []
    for node in tree.walk():
        if isinstance(node, ast.Call) and node.name in _PRESENCE_TRAPS and len(node.args) == 1:
            path = _member_path(node.args[0])
            if path:
                found.append(Problem(node.args[0].start, f"{node.name}({path}) keeps the items whose {path} is false "
                                     f"too (fhirpathpy takes a present value as true): write {node.name}({path} = true), "
                                     f"or {node.name}({path}.exists()) for presence"))
    return found
