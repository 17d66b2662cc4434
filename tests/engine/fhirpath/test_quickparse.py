"""The hand-written FHIRPath parser against ANTLR's: what it accepts, it reads exactly as ANTLR does.

`parse` tries the hand-written parser (quickparse) first and asks ANTLR for whatever it leaves
(syntax errors included). So the one property that matters: when it returns a tree, that tree is
ANTLR's, node by node, positions included. Checked on every built-in expression, on generated
expressions of every construct of the grammar, and on token soup (mostly not FHIRPath at all).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_module.engine.fhirpath import FHIRPathSyntaxError, ast, parse
from fhir_module.engine.fhirpath.parser import antlr_parse
from fhir_module.engine.fhirpath.quickparse import NotHandled, quick_parse

from tests.engine.fhirpath.test_fhirpath_parser import BUILT_IN, _generated


def _exact(node: Any) -> Any:
    """Everything of a node, positions too (node equality leaves positions out)."""
    if not isinstance(node, ast.Node):
        return node
    fields = {name: _exact(value) for name, value in vars(node).items()}
    fields = {name: tuple(_exact(v) for v in value) if isinstance(value, tuple) else value
              for name, value in fields.items()}
    return type(node).__name__, tuple(sorted(fields.items(), key=lambda item: item[0]))


def _antlr(text: str) -> Any:
    try:
        return _exact(antlr_parse(text))
    except FHIRPathSyntaxError:
        return "refused"


def agrees(text: str) -> bool:
    """False when the hand-written parser leaves the text to ANTLR; else its tree must be ANTLR's."""
    try:
        quick = _exact(quick_parse(text))
    except NotHandled:
        return False
    assert quick == _antlr(text), text
    return True


@pytest.mark.parametrize("text", BUILT_IN)
def test_every_built_in_expression_is_read_without_antlr_as_antlr_reads_it(text: str) -> None:
    assert agrees(text)


@pytest.mark.parametrize("text", [
    "a.b.c", "(a).b", "((a)).b[0]", "a[(0)]", "-a.b", "- -1", "-(a) * b", "+a[0].c", "1 - -2", "a - b - c",
    "a / b * c", "a div b mod c", "a & b + c", "a | b | c", "a <= b < c", "a = b != c ~ d !~ e",
    "a in b contains c", "a and b or c xor d implies e", "a implies b implies c",
    "a is Quantity", "a as FHIR.Coding", "a is `odd type`", "a is A.B = true", "a = b is C", "(a is B).c",
    "a is B.c.d", "a.as(Quantity)", "a.is(FHIR.Quantity)", "is.contains(in)", "as", "contains('x')",
    "in.in", "`div`.`mod`", "%a", "%'a b'", "%`a b`", "% a", "%is", "$this", "$index.first()", "a.$this",
    "$total + 1", "{}", "{ }", "true and false", "'text'", "''", "' spaced  '", "42", "0042", "4.50",
    "5 'mg'", "5'mg'", "2 days", "1 year", "3 milliseconds", "1.5 'mg/d'", "@2024", "@2024-01", "@2024-01-31",
    "@2024-01-31T10", "@2024-01-31T10:30", "@2024-01-31T10:30:00.123Z", "@2024-01-31T10:30+05:00",
    "@2024Z", "@2024-01-31T10:30ZZ", "@T10", "@T10:30:00", "@T10:30:00.5-03:00", "f()", "f(1)",
    "f(1, 2, g(3))", "a.where(b = 1).select(c)", "a\n  .b\r\n\t.c()", "  a  ", "a.iif(b, c, d)",
    "%limit.value > %dose.mgPerDay * 2", "x.exists() and x.count() > 1 implies y.empty()",
])
def test_each_construct_is_read_as_antlr_reads_it(text: str) -> None:
    assert agrees(text)


@pytest.mark.parametrize("text", [
    "", " ", "a b", "a.", "a..b", "(a", "a)", "f(", "f(1,)", "a[0", "a[]", "%", "%1", "$", "$thisx", "$other",
    "a.day", "day", "div", "a +", "* a", "a is", "a is 1", "a is B.c()", "@", "@20", "@2024-1", "@T1",
    "'open", "`open", r"'it\'s'", r"`a\`b`", "a /* note */ + b", "a // note", "a # b", "a ! b", "é",
    "{", "}", "1 2", "5 'mg' 'g'", "@2024-01-31T", "a.1", "true.false",
])
def test_what_it_does_not_read_is_antlrs(text: str) -> None:
    """Errors and what the hand-written parser leaves: `parse` answers as ANTLR alone does."""
    agrees(text)
    try:
        expected = _exact(antlr_parse(text))
    except FHIRPathSyntaxError as error:
        with pytest.raises(FHIRPathSyntaxError) as raised:
            parse.__wrapped__(text)
        assert (raised.value.offset, raised.value.problem) == (error.offset, error.problem)
    else:
        assert _exact(parse.__wrapped__(text)) == expected


@settings(max_examples=400, deadline=None)
@given(_generated)
def test_generated_expressions_are_read_as_antlr_reads_them(text: str) -> None:
    agrees(text)


_operators = ["*", "/", "div", "mod", "+", "-", "&", "|", "<=", "<", ">", ">=", "=", "~", "!=", "!~", "in", "contains",
              "and", "or", "xor", "implies"]
_bare_leaves = st.sampled_from(["a", "b", "`c d`", "in", "1", "2.5", "'s'", "5 'mg'", "3 days", "%v", "$this", "{}",
                                "true", "@2024-01-31", "@T10:00"])


def _bare(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Without the parentheses that would decide the structure: precedence and associativity do."""
    return st.one_of(
        st.tuples(children, st.sampled_from(_operators), children).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(children, st.sampled_from(["-", "+"])).map(lambda t: f"{t[1]}{t[0]}"),
        st.tuples(children, st.sampled_from(["b", "is", "contains", "first()", "where(x > 1)", "$this"]))
        .map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(children, children).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(children, st.sampled_from(["is", "as"]), st.sampled_from(["Quantity", "FHIR.Coding", "A.b.C"]))
        .map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        children.map(lambda t: f"({t})"),
        st.lists(children, max_size=3).map(lambda args: f"f({', '.join(args)})"),
    )


@settings(max_examples=1000, deadline=None)
@given(st.recursive(_bare_leaves, _bare, max_leaves=10))
def test_unparenthesised_expressions_are_read_as_antlr_reads_them(text: str) -> None:
    agrees(text)


_spaces = st.sampled_from(["", " ", "  ", "\n", "\t", " \r\n "])
_pieces = st.sampled_from([
    "a", "b", "value", "where", "exists", "first", "is", "as", "in", "contains", "div", "mod", "and", "or",
    "xor", "implies", "true", "false", "day", "days", "year", "Quantity", "FHIR", "`x y`", "%", "%v", "$this",
    "$index", "$total", "0", "1", "2.5", "'s'", "'mg'", "@2024", "@2024-01-31", "@2024-01-31T10:00Z", "@T09",
    ".", ",", "(", ")", "[", "]", "{", "}", "+", "-", "*", "/", "&", "|", "<", "<=", ">", ">=", "=", "!=", "~",
    "!~", "'", "`", "@", "#", "\\",
])


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.tuples(_spaces, _pieces), min_size=1, max_size=14))
def test_token_soup_is_refused_or_read_as_antlr_reads_it(pieces: list[tuple[str, str]]) -> None:
    agrees("".join(space + piece for space, piece in pieces))
