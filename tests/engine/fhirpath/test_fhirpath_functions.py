"""One function table for the checker and the evaluator: what it allows runs, what it refuses is said."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import fhirpathpy
import pytest
from fhirpathpy.engine.invocations import invocation_registry

from fhir_module.engine.expressions import USER_FUNCTIONS, Expression, ExpressionError
from fhir_module.engine.facts import ChartFacts
from fhir_module.engine.fhirpath import STANDARD_FUNCTIONS, call_problems, parse, presence_traps, valueset_arguments
from fhir_module.engine.fhirpath import fhirpathpy_functions, functions
from fhir_module.engine.functions import FUNCTIONS, MODULE_FUNCTIONS


def _problems(text: str) -> list[tuple[int, str]]:
    return [(p.offset, p.message) for p in call_problems(parse(text), FUNCTIONS)]


def test_the_standard_functions_are_fhirpathpys() -> None:
    for name, function in STANDARD_FUNCTIONS.items():
        assert name in invocation_registry
    assert {"where", "exists", "iif", "aggregate", "join", "first", "coalesce"} <= set(STANDARD_FUNCTIONS)
    assert not {"resolve", "memberOf", "conformsTo", "defineVariable", "and", "containsOp"} & set(STANDARD_FUNCTIONS)


def test_the_written_table_is_the_installed_fhirpathpys() -> None:
    # The start reads the written table (no fhirpathpy import): it must be what fhirpathpy's own
    # registry gives, for the registry file it names. Stale: `python -m fhir_module.engine.fhirpath.functions`.
    assert fhirpathpy_functions.SHA256 == functions.installed_registry_digest()
    assert functions.from_written(fhirpathpy_functions.TABLE) == functions.from_fhirpathpy()
    assert STANDARD_FUNCTIONS == functions.from_fhirpathpy()
    assert Path(fhirpathpy_functions.__file__).read_text(encoding="utf-8") == functions.written_module()


def test_another_fhirpathpy_is_read_itself(tmp_path: Path) -> None:
    # An installed fhirpathpy whose registry differs from the written one (here: a function more)
    # is not judged by the written table: its own registry is read.
    copy = tmp_path / "fhirpathpy"
    shutil.copytree(Path(fhirpathpy.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    registry = copy.joinpath(*functions.REGISTRY_FILE.split("/"))
    registry.write_text(registry.read_text(encoding="utf-8") + '\ninvocation_registry["madeUp"] = {"fn": None}\n',
                        encoding="utf-8")
    code = ("import sys; from fhir_module.engine.fhirpath import STANDARD_FUNCTIONS; "
            "assert sys.modules['fhirpathpy'].__file__.startswith(sys.argv[1]); "
            "assert 'madeUp' in STANDARD_FUNCTIONS and 'where' in STANDARD_FUNCTIONS")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": str(tmp_path)})


def test_the_evaluator_registers_exactly_the_module_functions_of_the_table() -> None:
    assert set(USER_FUNCTIONS) == set(MODULE_FUNCTIONS)
    for name, (method, function) in MODULE_FUNCTIONS.items():
        assert callable(getattr(ChartFacts, method)), method
        assert set(USER_FUNCTIONS[name]["arity"]) == set(function.arities)


@pytest.mark.parametrize(("text", "expected"), [
    ("%order.exist()", [(7, "unknown function exist() (did you mean exists()?)")]),
    ("resolve()", [(0, "unknown function resolve() (did you mean resolveIn()?)")]),
    ("%a.exists(1, 2)", [(3, "exists() takes 0 or 1 arguments, not 2")]),
    ("%a.empty(true)", [(3, "empty() takes 0 arguments, not 1")]),
    ("iif(true)", [(0, "iif() takes 2 or 3 arguments, not 1")]),
    ("coalesce()", [(0, "coalesce() takes one or more arguments, not 0")]),
    ("therapies()", [(0, "therapies() takes 1 argument, not 0")]),
    ("renalFunction('a', 'b')", [(0, "renalFunction() takes 5 arguments, not 2")]),
    ("therapies(%vs)", [(10, "argument 1 of therapies() must be a value set id or URL written in quotes, "
                            "so that it can be checked against the knowledge")]),
    ("therapies(3)", [(10, "argument 1 of therapies() must be a value set id or URL written in quotes, "
                           "so that it can be checked against the knowledge")]),
    ("conditions('x', 'yes')", [(16, "argument 2 of conditions() must be true or false")]),
    ("latestObservation('hr', 'thirty')", [(24, "argument 2 of latestObservation() must be a number")]),
    ("%a.take(1.5)", [(8, "argument 1 of take() must be an integer")]),
    ("%a.ofType('Quantity')", [(10, "argument 1 of ofType() must be a type name (such as Quantity or FHIR.Coding)")]),
    ("$total + 1", [(0, "$total is only defined inside aggregate()")]),
    ("%a.aggregate($total + $this, 0)", []),
    ("%a.where($this > 1).exists() and therapies('maoi').where(current).empty()", []),
    ("latestObservation('heart-rate', %withinDays)", []),
    ("%a.ofType(FHIR.Quantity).value", []),
])
def test_call_problems(text: str, expected: list[tuple[int, str]]) -> None:
    assert _problems(text) == expected


def test_valueset_arguments_are_the_literals_in_value_set_places() -> None:
    tree = parse("renalFunction('a', 'b', 'c', 'd', 'e') | conditions('x', true) | %o.where(code = 'not-a-vs')")
    assert [literal.value for literal in valueset_arguments(tree, FUNCTIONS)] == ["a", "b", "c", "d", "e", "x"]


@pytest.mark.parametrize("text", ["this is (not fhirpath", "%orderMatch.exists(", "%a.exist()", "%a.exists(1, 2)"])
def test_the_evaluator_refuses_what_the_check_refuses(text: str) -> None:
    with pytest.raises(ExpressionError, match="at column"):
        Expression(text)


@pytest.mark.parametrize(("text", "flagged"), [
    ("%a.where(current)", ["where(current)"]),
    ("%a.where(draft.current)", ["where(draft.current)"]),
    ("%a.exists(current)", ["exists(current)"]),
    ("%a.where(current = true) | %a.where(current.exists()) | %a.all(current) | %a.where(draft.not())", []),
])
def test_filters_fhirpathpy_reads_as_presence(text: str, flagged: list[str]) -> None:
    problems = presence_traps(parse(text))
    assert [p.message.split(" keeps")[0] for p in problems] == flagged
