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


# -- the orjson fast path reads exactly what the exact reading reads --------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e400", "-1e400", "1E2", "-0", "-0.0", "0.1", "1e-7", "18446744073709551615",
                     "18446744073709551616", "-9223372036854775808", "-9223372036854775809", "NaN", "Infinity"]),
)
_strings = st.one_of(
    st.text(max_size=8).map(json.dumps),
    st.sampled_from(['"\\ud800"', '"\\ud83d\\ude00"', '"a\\u00e9"', '"\\"["', "'single'"]),
)
_scalars = st.one_of(_numbers, _strings, st.sampled_from(["true", "false", "null"]))
_texts = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(st.tuples(_strings, inner), max_size=4).map(
            lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"),
    ),
    max_leaves=20,
)


def _reading(read, text):
    try:
        value = read(text)
    except JsonError as error:
        return ("refused", error.message, error.code)
    return ("read", json.dumps(value, sort_keys=True, allow_nan=True), repr(value))


@settings(max_examples=500, deadline=None)
@given(text=_texts, as_bytes=st.booleans())
def test_fast_path_reads_what_the_exact_path_reads(text, as_bytes):
    given_text = text.encode("utf-8", "surrogatepass") if as_bytes else text
    assert _reading(strictjson.loads, given_text) == _reading(strictjson.exact_loads, given_text)


@pytest.mark.parametrize("depth", [63, 64, 65, 1100])
@pytest.mark.parametrize("shape", ["arrays", "objects", "both"])
def test_fast_path_keeps_the_depth_limit(depth, shape):
    levels = {"arrays": [("[1, ", "]")], "objects": [('{"a": 1, "b": ', "}")],
              "both": [("[", "]"), ('{"a": ', "}")]}[shape]
    text = "".join(levels[i % len(levels)][0] for i in range(depth)) + "0"
    text += "".join(levels[i % len(levels)][1] for i in reversed(range(depth)))
    assert _reading(strictjson.loads, text) == _reading(strictjson.exact_loads, text)


@pytest.mark.parametrize("text", [
    '{"": [18446744073709551616], "": []}',  # a refused integer under a key a duplicate replaces
    '{"a": 9223372036854775808, "a": 1}',
    '[{"id": "1234567890123456789012"}]',  # a long run of digits in a string: read the exact way, same value
    '{"a": 1e19}',
])
def test_fast_path_sees_what_duplicate_keys_hide(text):
    assert _reading(strictjson.loads, text) == _reading(strictjson.exact_loads, text)


# -- the depth of a large text is checked by orjson's own limit: the same verdict as the walk --------

import contextlib  # noqa: E402

import orjson  # noqa: E402


@contextlib.contextmanager
def _wrapped_from(size: int):
    """`loads` with the wrapper (`_read_within`) used from `size` bytes on."""
    kept = strictjson.WRAPPED_FROM_BYTES
    strictjson.WRAPPED_FROM_BYTES = size
    try:
        yield
    finally:
        strictjson.WRAPPED_FROM_BYTES = kept


def _walked(text, max_depth=strictjson.MAX_DEPTH):
    """The old check: orjson's value if it is a container the jsonschema walk finds shallow enough."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, (dict, list)) or not strictjson._nesting(max_depth).is_valid(value):
        return None
    return value


def test_the_installed_orjson_has_the_limit_the_wrapper_relies_on() -> None:
    """If this fails, the depth is still checked (on the value read), only slower: see
    `_orjson_limits_depth`."""
    assert strictjson._orjson_limits_depth()


_SHAPES = st.lists(st.tuples(st.sampled_from(["array", "object"]), st.integers(0, 2), st.integers(0, 2),
                             st.sampled_from(["", " ", "\n\t"])), min_size=1, max_size=80)


def _nested(levels, leaf) -> str:
    """Levels from the outside in: each an array or object with siblings before and after it."""
    text = leaf
    for kind, before, after, space in reversed(levels):
        items = ["1"] * before + [text] + ['"]"'] * after
        if kind == "array":
            text = "[" + space + ", ".join(items) + space + "]"
        else:
            text = "{" + space + ", ".join(f'"k{i}": {item}' for i, item in enumerate(items)) + space + "}"
    return text


@settings(max_examples=400, deadline=None)
@given(levels=_SHAPES, leaf=st.one_of(_texts, st.sampled_from(["[]", "{}", '"[[["', '"]]]"', "[[]]"])),
       max_depth=st.sampled_from([1, 2, 16, 63, 64, 65]), as_bytes=st.booleans())
def test_orjson_limit_gives_the_walks_verdict(levels, leaf, max_depth, as_bytes):
    """The new depth check against the old, on nesting around the limit: the same value, or None
    for both (both then read the exact way)."""
    text = _nested(levels, leaf)
    given_text = text.encode("utf-8", "surrogatepass") if as_bytes else text
    new, old = strictjson._read_within(given_text, max_depth), _walked(given_text, max_depth)
    assert (new is None) == (old is None)
    if new is not None:
        assert orjson.dumps(new) == orjson.dumps(old)


@pytest.mark.parametrize("text", [
    "", " ", "1], [2", "1]", "]", "[", "[1], [2]", "{}, {}", "[] ,[]", '{"a": 1}]', '[{"a": 1}', "1, 2",
    "[1]]" + "[" * 3, "]" * 960 + "[" * 960, "]" * 961 + "[" * 961, "[] ]" + ",[" * 959 + "[", "\ufeff{}",
    '{"a": 1} x', "x {}", '"only a string"', "3", "null",
])
def test_a_text_cannot_escape_the_wrapper(text):
    """Texts that are not one JSON value (some would close the wrapper's arrays and open others):
    never read by the wrapper, and `loads` says of them what the exact reading says."""
    assert strictjson._read_within(text, strictjson.MAX_DEPTH) is None
    assert strictjson._read_within(text.encode("utf-8"), strictjson.MAX_DEPTH) is None
    if text == "1], [2":  # orjson reads the wrapped text: only the unpacking refuses it
        orjson.loads("[" * 960 + text + "]" * 960)
    with _wrapped_from(0):
        assert _reading(strictjson.loads, text) == _reading(strictjson.exact_loads, text)


@settings(max_examples=300, deadline=None)
@given(text=_texts, as_bytes=st.booleans())
def test_fast_path_through_the_wrapper_reads_what_the_exact_path_reads(text, as_bytes):
    given_text = text.encode("utf-8", "surrogatepass") if as_bytes else text
    with _wrapped_from(0):
        assert _reading(strictjson.loads, given_text) == _reading(strictjson.exact_loads, given_text)


@pytest.mark.parametrize("depth", [63, 64, 65, 1024, 1025, 5000])
def test_a_large_text_keeps_the_depth_limit(depth):
    """Over WRAPPED_FROM_BYTES, as a large request body is: depth 64 read, 65 refused as too costly."""
    text = '{"pad": "' + "x" * strictjson.WRAPPED_FROM_BYTES + '", "deep": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
    assert len(text) > strictjson.WRAPPED_FROM_BYTES
    assert _reading(strictjson.loads, text) == _reading(strictjson.exact_loads, text)
    assert _reading(strictjson.loads, text.encode()) == _reading(strictjson.exact_loads, text)
    if depth <= strictjson.MAX_DEPTH:
        assert strictjson.loads(text)["pad"] == "x" * strictjson.WRAPPED_FROM_BYTES
    else:
        with pytest.raises(JsonError) as deep:
            strictjson.loads(text)
        assert deep.value.code == "too-costly"
