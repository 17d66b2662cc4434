"""Expressions of one shape share Python's compile of their source (runtime.Code.function): each
expression's code is the shared code with its own strings in place of the stand-ins. It must be,
instruction by instruction, the code that compiling its source as written gives (the old way)."""

from __future__ import annotations

import dis
from types import CodeType
from typing import Any

import pytest

from fhir_module.engine import Engine
from fhir_module.engine.expressions import _COMPILER
from fhir_module.engine.fhirpath import parse
from fhir_module.engine.fhirpath import runtime
from fhir_module.engine.fhirpath.runtime import Code
from tests.engine.fhirpath.test_compiler_differential import knowledge_expressions


def _read(code: CodeType) -> Any:
    """What a code object does and says: each instruction with its argument's value (typed), its
    names, lines and file, the code inside it read the same way."""
    def value(argument: Any) -> Any:
        if isinstance(argument, CodeType):
            return _read(argument)
        if isinstance(argument, (tuple, frozenset)):
            return type(argument).__name__, sorted(map(repr, argument)) if isinstance(argument, frozenset) \
                else tuple(value(item) for item in argument)
        return type(argument).__name__, argument

    return (code.co_name, code.co_qualname, code.co_filename, code.co_firstlineno, code.co_argcount,
            code.co_flags, code.co_names, code.co_varnames, code.co_cellvars, code.co_freevars,
            [line for _, _, line in code.co_lines()],
            [(instruction.opname, value(instruction.argval)) for instruction in dis.get_instructions(code)])


@pytest.fixture
def compiled_both_ways(monkeypatch):
    """Each function `Code.function` makes, beside the one compiling its source as written makes."""
    pairs: list[tuple[str, Any, Any]] = []
    made = Code.function

    def both(self: Code, name: str, parameters: str, filename: str = "") -> Any:
        shared = made(self, name, parameters, filename)
        namespace = dict(self.names)
        exec(compile(f"def {name}({parameters}):\n{self.source}\n", filename, "exec"), namespace)  # noqa: S102
        pairs.append((filename, shared, namespace[name]))
        return shared

    monkeypatch.setattr(Code, "function", both)
    return pairs


def test_shared_code_is_the_code_of_each_expression_as_written(compiled_both_ways):
    texts = knowledge_expressions(Engine.default())
    runtime._compiled_shape.cache_clear()
    for text in texts:
        _COMPILER.compile(parse(text), text)
    assert len(compiled_both_ways) == len(texts) > 100
    for filename, shared, direct in compiled_both_ways:
        assert _read(shared.__code__) == _read(direct.__code__), filename
        assert shared.__globals__.keys() == direct.__globals__.keys()
        assert all(shared.__globals__[name] is direct.__globals__[name]
                   for name in direct.__globals__ if name not in ("__builtins__", direct.__name__))
    # Shared: fewer compiles than expressions (88 shapes for the built-in modules' 219).
    assert runtime._compiled_shape.cache_info().currsize < len(texts) * 2 // 3


def test_same_shape_is_compiled_once_and_each_keeps_its_own_strings():
    runtime._compiled_shape.cache_clear()
    status = _COMPILER.compile(parse("%order.status = 'active'"), "%order.status = 'active'")
    intent = _COMPILER.compile(parse("%order.intent = 'order'"), "%order.intent = 'order'")
    assert runtime._compiled_shape.cache_info().misses == 1
    order = {"resourceType": "MedicationRequest", "status": "active", "intent": "plan"}
    variables = {"order": [order]}
    assert status(order, variables.get) == [True]
    assert intent(order, variables.get) == [False]
    assert status.__code__.co_filename == "<fhirpath %order.status = 'active'>"
    assert intent.__code__.co_filename == "<fhirpath %order.intent = 'order'>"


@pytest.mark.parametrize("text, expected", [
    ("x\x000\x00y", ["x\x000\x00y"]),  # a string holding what looks like a stand-in
    ("\x001\x00", ["\x001\x00"]),
])
def test_a_string_that_holds_the_stand_in_character_is_compiled_as_written(text, expected):
    code = Code({})
    code.add(f"return [{code.text('first')}, {code.text(text)}][1:]")
    assert code.function("evaluate", "")() == expected
    assert code.source.endswith(f"return ['first', {text!r}][1:]")


def test_a_stand_in_folded_by_python_is_compiled_as_written():
    """Python folds `'ab' * 2` into one constant, which no stand-in names: the source as written is
    compiled instead (the compiler writes no such expression today; this is the guard)."""
    code = Code({})
    code.add(f"return [{code.text('ab')} * 2, {code.text('c')} + {code.text('d')}]")
    assert code.function("evaluate", "")() == ["abab", "cd"]
