"""The strict FHIRPath parser: every error is found with its place, and what it accepts means what
fhirpathpy computes (same grammar, same tree)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from fhirpathpy.parser import parse as fhirpathpy_parse
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_module.engine.fhirpath import FHIRPathSyntaxError, ast, parse, parse_for_fhirpathpy
from fhir_module.fhir.builtin import built_in_resources


def _expressions(value: Any) -> list[str]:
    """Every FHIRPath text in a resource: Expression.expression, and the {{ }} parts of templates."""
    found: list[str] = []
    if isinstance(value, str):
        found += [part.strip() for part in re.findall(r"\{\{(.*?)\}\}", value, re.DOTALL)]
    elif isinstance(value, dict):
        if value.get("language") == "text/fhirpath" and isinstance(value.get("expression"), str):
            found.append(value["expression"])
        for item in value.values():
            found += _expressions(item)
    elif isinstance(value, list):
        for item in value:
            found += _expressions(item)
    return found


BUILT_IN = sorted(set(_expressions(list(built_in_resources()))))


def test_the_built_in_knowledge_has_expressions_to_parse() -> None:
    assert len(BUILT_IN) > 150


@pytest.mark.parametrize("text", BUILT_IN)
def test_every_built_in_expression_parses_to_fhirpathpys_own_tree(text: str) -> None:
    tree, evaluated = parse_for_fhirpathpy(text)
    assert isinstance(tree, ast.Node)
    assert evaluated == fhirpathpy_parse(text)  # the lenient parser read the same expression


@pytest.mark.parametrize(("text", "column", "problem"), [
    ("this is (not fhirpath", 9, "unexpected '('"),
    ("%orderMatch.exists(", 20, "unexpected end of expression"),
    ("%dose.mgPerDay > ", 18, "unexpected end of expression"),
    ("%a.exists() %b", 13, "unexpected '%': the expression should end here"),
    ("a.b.c)", 6, "unexpected ')'"),
    ("(1 + 2", 7, "unexpected end of expression"),
    ("%x = 'open", 6, "unexpected character"),
    ("a # b", 3, "unexpected character '#'"),
    ("%limit..value", 8, "unexpected '.'"),
    ("where(", 7, "unexpected end of expression"),
    ("", 1, "empty expression"),
    ("   ", 1, "empty expression"),
    ("1 2", 3, "unexpected '2'"),
])
def test_syntax_errors_say_what_and_where(text: str, column: int, problem: str) -> None:
    with pytest.raises(FHIRPathSyntaxError) as raised:
        parse(text)
    assert raised.value.column == column, str(raised.value)
    assert raised.value.problem.startswith(problem), str(raised.value)
    assert str(raised.value).endswith(f"at column {column}")


def test_an_error_on_a_later_line_gives_line_and_column() -> None:
    with pytest.raises(FHIRPathSyntaxError) as raised:
        parse("%a.exists()\n  and (%b")
    assert (raised.value.line, raised.value.column) == (2, 10)
    assert str(raised.value).endswith("at line 2, column 10")


def test_fhirpathpy_alone_accepts_what_the_strict_parser_refuses() -> None:
    # Why the strict parser exists: these "compile" in fhirpathpy and evaluate as something else.
    for text in ("this is (not fhirpath", "%orderMatch.exists(", "%a.exists() %b"):
        fhirpathpy_parse(text)
        with pytest.raises(FHIRPathSyntaxError):
            parse(text)


def _shape(node: ast.Node) -> Any:
    """A node without positions, for comparing trees."""
    if isinstance(node, ast.Literal):
        return ("lit", node.kind, node.value, node.unit)
    if isinstance(node, ast.Variable):
        return ("%", node.name)
    if isinstance(node, ast.Member):
        return (".", _shape(node.source) if node.source else None, node.name)
    if isinstance(node, ast.Call):
        return ("()", _shape(node.source) if node.source else None, node.name, tuple(_shape(a) for a in node.args))
    if isinstance(node, ast.Special):
        return ("$", _shape(node.source) if node.source else None, node.name)
    if isinstance(node, ast.Indexer):
        return ("[]", _shape(node.source), _shape(node.index))
    if isinstance(node, ast.Unary):
        return ("u" + node.op, _shape(node.operand))
    if isinstance(node, ast.Binary):
        return (node.op, _shape(node.left), _shape(node.right))
    assert isinstance(node, ast.TypeOperation)
    return (node.op, _shape(node.operand), node.type_name)


def test_precedence_follows_the_grammar() -> None:
    a, b, c = ((".", None, n) for n in "abc")
    assert _shape(parse("a or b and c")) == ("or", a, ("and", b, c))
    assert _shape(parse("a implies b or c")) == ("implies", a, ("or", b, c))
    assert _shape(parse("1 + 2 * 3")) == ("+", ("lit", "number", 1, None), ("*", ("lit", "number", 2, None),
                                                                             ("lit", "number", 3, None)))
    assert _shape(parse("a | b = c")) == ("=", ("|", a, b), c)
    assert _shape(parse("a = b and b in c")) == ("and", ("=", a, b), ("in", b, c))
    assert _shape(parse("-a.b")) == ("u-", (".", a, "b"))
    assert _shape(parse("a is Quantity and b")) == ("and", ("is", a, "Quantity"), b)
    assert _shape(parse("(a or b) and c")) == ("and", ("or", a, b), c)


def test_literals() -> None:
    assert parse("{}") == ast.Literal(start=0, end=2, kind=ast.NULL, value=None)
    assert parse("true").value is True and parse("false").value is False
    assert parse(r"'it\'s \u00e9\n'").value == "it's é\n"
    assert parse("42").value == 42 and isinstance(parse("42").value, int)
    assert parse("4.50").value == Decimal("4.50")
    assert (parse("5 'mg'").kind, parse("5 'mg'").value, parse("5 'mg'").unit) == (ast.QUANTITY, 5, "mg")
    assert parse("3 days").unit == "days"
    assert (parse("@2024-02-29").kind, parse("@2024-02-29").value) == (ast.DATE, "2024-02-29")
    assert (parse("@2024-02-29T10:00:00Z").kind, parse("@2024-02-29T10:00:00Z").value) == (ast.DATETIME, "2024-02-29T10:00:00Z")
    assert (parse("@T10:30").kind, parse("@T10:30").value) == (ast.TIME, "10:30")


def test_variables_identifiers_and_positions() -> None:
    tree = parse("%`odd name`.where(`div` > %'x y')[0].$this")
    assert isinstance(tree, ast.Special) and tree.name == "$this"
    indexer = tree.source
    assert isinstance(indexer, ast.Indexer)
    call = indexer.source
    assert isinstance(call, ast.Call) and call.name == "where" and call.name_start == 12
    assert call.source == ast.Variable(start=0, end=11, name="odd name")
    comparison = call.args[0]
    assert isinstance(comparison, ast.Binary) and comparison.left == ast.Member(start=0, end=0, source=None, name="div")
    assert comparison.right == ast.Variable(start=0, end=0, name="x y")
    text = "%dose.mgPerDay > %limit"
    tree = parse(text)
    assert [text[n.start:n.end] for n in tree.walk()] == [text, "%dose.mgPerDay", "%dose", "%limit"]


# -- generated expressions: what is written is what is read ---------------------------------------

_names = st.sampled_from(["a", "value", "code", "`div`", "`odd name`", "is", "contains"])
_literals = st.one_of(
    st.sampled_from(["{}", "true", "false", "0", "12", "3.25", "'x'", r"'it\'s'", "5 'mg'", "2 days",
                     "@2024-01-31", "@2024-01-31T10:00:00Z", "@T08:15"]),
)
_leaves = st.one_of(_literals, _names, st.sampled_from(["%order", "%'a b'", "$this", "$index"]))
_binary = ["*", "/", "div", "mod", "+", "-", "&", "|", "<=", "<", ">", ">=", "=", "~", "!=", "!~",
           "in", "contains", "and", "or", "xor", "implies"]


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(_binary), children).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
        st.tuples(children, _names).map(lambda t: f"({t[0]}).{t[1]}"),
        st.tuples(children, st.sampled_from(["where", "exists", "iif", "first", "select"]),
                  st.lists(children, max_size=3)).map(lambda t: f"({t[0]}).{t[1]}({', '.join(t[2])})"),
        st.tuples(children, children).map(lambda t: f"({t[0]})[{t[1]}]"),
        children.map(lambda t: f"-({t})"),
        st.tuples(children, st.sampled_from(["is", "as"]), st.sampled_from(["Quantity", "FHIR.Coding"]))
        .map(lambda t: f"({t[0]}) {t[1]} {t[2]}"),
    )


_generated = st.recursive(_leaves, _combine, max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(_generated)
def test_generated_expressions_parse_as_fhirpathpy_reads_them(text: str) -> None:
    tree, evaluated = parse_for_fhirpathpy(text)
    assert evaluated == fhirpathpy_parse(text)
    for node in tree.walk():
        assert 0 <= node.start <= node.end <= len(text)


@settings(max_examples=200, deadline=None)
@given(_generated, st.data())
def test_a_cut_or_damaged_expression_is_refused_or_read_whole(text: str, data: st.DataObject) -> None:
    """Whatever the damage, the strict parser either refuses it or reads all of it: fhirpathpy's
    lenient parse of an accepted text is the same tree, nothing was skipped or invented."""
    cut = data.draw(st.integers(0, len(text)))
    damaged = data.draw(st.sampled_from([text[:cut], text[:cut] + ")" + text[cut:], text[:cut] + " x " + text[cut:],
                                         text + " (", text[:cut] + "." + text[cut:]]))
    try:
        _, evaluated = parse_for_fhirpathpy(damaged)
    except FHIRPathSyntaxError as error:
        assert 0 <= error.offset <= len(damaged)
        return
    assert evaluated == fhirpathpy_parse(damaged)
