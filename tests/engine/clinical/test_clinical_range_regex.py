"""range_regex: exactly the codes between two bounds in plain string order, checked by brute force."""

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_module.engine.clinical import range_regex
from fhir_module.engine.clinical.valueset import CODE_ALPHABET

SMALL = ".0A"


def all_strings(alphabet, max_len):
    for length in range(max_len + 1):
        for chars in itertools.product(alphabet, repeat=length):
            yield "".join(chars)


def test_exhaustive_over_a_small_alphabet():
    """Every pair of bounds up to length 3 against every string up to length 4."""
    bounds = list(all_strings(SMALL, 3))
    candidates = list(all_strings(SMALL, 4))
    for low, high in itertools.product(bounds, bounds):
        if low > high:
            continue
        pattern = re.compile(range_regex(low, high, alphabet=SMALL))
        for code in candidates:
            assert (pattern.fullmatch(code) is not None) == (low <= code <= high), (low, high, code)


code_text = st.text(alphabet=CODE_ALPHABET, max_size=7)


@st.composite
def bounds_and_probe(draw):
    low, high = sorted((draw(code_text), draw(code_text)))
    # Probes near the bounds find the edge cases; plain random probes cover the rest.
    base = draw(st.sampled_from([low, high, draw(code_text)]))
    cut = draw(st.integers(0, len(base)))
    probe = base[:cut] + draw(st.text(alphabet=CODE_ALPHABET, max_size=3))
    return low, high, probe


@settings(max_examples=1000, deadline=None)
@given(bounds_and_probe())
def test_matches_brute_force_string_order(case):
    low, high, probe = case
    assert (re.fullmatch(range_regex(low, high), probe) is not None) == (low <= probe <= high)


@pytest.mark.parametrize(("low", "high", "inside", "outside"), [
    ("F32.0", "F32.5", ["F32.0", "F32.5", "F32.1", "F32.4", "F32.01"], ["F32.A", "F32.8", "F32.81", "F32.9", "F32", "F32.50"]),
    ("I21.01", "I21.4", ["I21.01", "I21.09", "I21.1", "I21.11", "I21.3", "I21.4"], ["I21.A1", "I21.9", "I21.0", "I21.41"]),
    ("K72.00", "K72.91", ["K72.9", "K72.90", "K72.91", "K72.00", "K72.1"], ["K72.92", "K72.0", "K73"]),
    ("H40.211", "H40.243", ["H40.211", "H40.219", "H40.22", "H40.229", "H40.243", "H40.24"], ["H40.21", "H40.244", "H40.2", "H40.25"]),
    ("F33.0", "F33.3", ["F33.0", "F33.1", "F33.2", "F33.3"], ["F33.40", "F33.8", "F33.9"]),
])
def test_icd_ranges_from_the_terminology(low, high, inside, outside):
    pattern = re.compile(range_regex(low, high))
    assert all(pattern.fullmatch(code) for code in inside)
    assert not any(pattern.fullmatch(code) for code in outside)


def test_regex_uses_no_python_only_syntax():
    pattern = range_regex("K72.00", "K72.91")
    assert "(?" not in pattern and "\\d" not in pattern
    assert pattern == r"K72\.(0(0[\.0-9A-Z]*|[1-9A-Z][\.0-9A-Z]*)|[1-8][\.0-9A-Z]*|9(1|[\.0][\.0-9A-Z]*)?)"


def test_equal_bounds_match_only_that_code():
    assert range_regex("I10", "I10") == "I10"


@pytest.mark.parametrize(("low", "high"), [("F32.5", "F32.0"), ("f32.0", "F32.5"), ("F32.0", "F32-5"), (None, "F32")])
def test_bad_ranges_are_authoring_errors(low, high):
    with pytest.raises(ValueError):
        range_regex(low, high)
