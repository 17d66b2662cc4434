"""Strict JSON: what Python's `json` reads silently but RFC 8259 (and FHIR) do not allow."""

from __future__ import annotations

import json

import pytest

from fhir_module import strictjson
from fhir_module.strictjson import JsonError


@pytest.mark.parametrize(
    "text, reason",
    [
        ('{"value": NaN}', "NaN is not a JSON number"),
        ('{"value": Infinity}', "Infinity is not a JSON number"),
        ('{"value": -Infinity}', "-Infinity is not a JSON number"),
        ('{"value": 1e400}', "out of range"),
        ('{"value": -1.5e309}', "out of range"),
        ('{"value": ' + "9" * 5000 + "}", "larger than 64 bits"),
        ('{"value": 18446744073709551616}', "larger than 64 bits"),
        ('{"value": -9223372036854775809}', "larger than 64 bits"),
        ('{"value": "\\ud800"}', "lone UTF-16 surrogate"),
        ('{"value": "a\\udc00b"}', "lone UTF-16 surrogate"),
        ('{"value": ["\\ud83d x"]}', "lone UTF-16 surrogate"),
        ('{"\\udfff": 1}', "property name"),
        ('{"value": ', "Expecting value at line 1"),
        ("[" * 100000, "nests deeper"),
        ('{"a": ' * 65 + "1" + "}" * 65, "nests deeper"),
    ],
)
def test_refused(text: str, reason: str) -> None:
    with pytest.raises(JsonError) as caught:
        strictjson.loads(text)
    assert reason in caught.value.message


def test_what_json_allows_is_read_as_json_reads_it() -> None:
    text = ('{"int": 18446744073709551615, "neg": -9223372036854775808, "small": 1e-400, "pi": 3.14,'
            ' "pair": "\\ud83d\\ude00", "escaped": "\\\\ud800", "deep": ' + "[" * 60 + "]" * 60 + "}")
    value = strictjson.loads(text)
    assert value == json.loads(text)
    assert value["pair"] == "\N{GRINNING FACE}" and value["escaped"] == "\\ud800"
    assert strictjson.loads(text.encode()) == value


def test_bytes_must_be_utf8() -> None:
    with pytest.raises(JsonError, match="not UTF-8"):
        strictjson.loads(b'\xff\xfe{"a": 1}')


def test_depth_error_is_too_costly_and_syntax_errors_say_where() -> None:
    with pytest.raises(JsonError) as deep:
        strictjson.loads("[" * 70 + "]" * 70)
    assert deep.value.code == "too-costly"
    with pytest.raises(JsonError) as broken:
        strictjson.loads('{\n"a": }')
    assert (broken.value.line, broken.value.column, broken.value.code) == (2, 6, "structure")


def test_check_tree_on_values_built_in_memory() -> None:
    strictjson.check_tree({"a": [[1]]}, 3)
    with pytest.raises(JsonError):
        strictjson.check_tree({"a": [[1]]}, 2)
    with pytest.raises(JsonError):
        strictjson.check_tree({"a": "\ud800"}, strings=True)
