"""A strict FHIRPath parser: any syntax error or trailing input is an error with its position.

fhirpathpy's own `parse` recovers from syntax errors and stops wherever the expression it
recognised ends, so `this is (not fhirpath` and `%orderMatch.exists(` both "compile" and then
quietly evaluate to something else. This parser runs the same ANTLR grammar (fhirpathpy's
FHIRPath.g4, so both agree on what an expression means) from its `entireExpression` rule, which
requires the end of input, with an error listener that stops at the first error instead of
recovering (antlr.py: loaded only for a text the hand-written parser, quickparse.py, leaves to
it). The parse tree becomes our own syntax tree (`ast`), positions included.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache
from typing import Any

from . import ast
from .quickparse import NotHandled, quick_parse


def describe_position(text: str, offset: int) -> str:
    """'column 7', or 'line 2, column 3' in a text of several lines (both 1-based)."""
    offset = max(0, min(offset, len(text)))
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {text.count(chr(10), 0, offset) + 1}, column {column}" if "\n" in text else f"column {column}"


class FHIRPathSyntaxError(ValueError):
    """The text is not a FHIRPath expression. `offset` is where the problem is (0-based, into
    `text`); `line` and `column` are 1-based, for people."""

    def __init__(self, text: str, offset: int, problem: str) -> None:
        self.text = text
        self.offset = max(0, min(offset, len(text)))
        self.line = text.count("\n", 0, self.offset) + 1
        self.column = self.offset - (text.rfind("\n", 0, self.offset) + 1) + 1
        self.problem = problem
        super().__init__(f"{problem} at {self.where}")

    @property
    def where(self) -> str:
        return describe_position(self.text, self.offset)


# -- parse tree → syntax tree ---------------------------------------------------------------------

_ESCAPES = {"`": "`", "'": "'", "\\": "\\", "/": "/", "f": "\f", "n": "\n", "r": "\r", "t": "\t", '"': '"'}
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)


def _unquote(token_text: str) -> str:
    """A STRING or DELIMITEDIDENTIFIER token's value: quotes removed, escapes resolved."""
    body = token_text[1:-1]

    def escape(match: re.Match[str]) -> str:
        code = match.group(1)
        return chr(int(code[1:], 16)) if code.startswith("u") and len(code) == 5 else _ESCAPES.get(code, code)

    return _ESCAPE.sub(escape, body)


def _span(ctx: Any) -> tuple[int, int]:
    return ctx.start.start, ctx.stop.stop + 1


def _identifier(ctx: Any) -> str:
    text = ctx.getText()
    return _unquote(text) if text.startswith("`") else text


def _number(text: str) -> int | Decimal:
    return Decimal(text) if "." in text else int(text)


class _Builder:
    def __init__(self, text: str) -> None:
        self.text = text

    def expression(self, ctx: Any) -> ast.Node:
        kind = type(ctx).__name__
        start, end = _span(ctx)
        if kind == "TermExpressionContext":
            return self.term(ctx.term())
        if kind == "InvocationExpressionContext":
            return self.invocation(ctx.invocation(), self.expression(ctx.expression()), start)
        if kind == "IndexerExpressionContext":
            return ast.Indexer(start=start, end=end, source=self.expression(ctx.expression(0)),
                               index=self.expression(ctx.expression(1)))
        if kind == "PolarityExpressionContext":
            return ast.Unary(start=start, end=end, op=ctx.getChild(0).getText(), operand=self.expression(ctx.expression()))
        if kind == "TypeExpressionContext":
            names = ctx.typeSpecifier().qualifiedIdentifier().identifier()
            return ast.TypeOperation(start=start, end=end, op=ctx.getChild(1).getText(),
                                     operand=self.expression(ctx.expression()),
                                     type_name=".".join(_identifier(n) for n in names))
        # Every other alternative is `expression OP expression`.
        return ast.Binary(start=start, end=end, op=ctx.getChild(1).getText(),
                          left=self.expression(ctx.expression(0)), right=self.expression(ctx.expression(1)))

    def term(self, ctx: Any) -> ast.Node:
        kind = type(ctx).__name__
        start, end = _span(ctx)
        if kind == "InvocationTermContext":
            return self.invocation(ctx.invocation(), None, start)
        if kind == "LiteralTermContext":
            return self.literal(ctx.literal())
        if kind == "ExternalConstantTermContext":
            constant = ctx.externalConstant()
            name = _unquote(constant.STRING().getText()) if constant.STRING() else _identifier(constant.identifier())
            return ast.Variable(start=start, end=end, name=name)
        return self.expression(ctx.expression())  # parenthesized

    def invocation(self, ctx: Any, source: ast.Node | None, start: int) -> ast.Node:
        kind = type(ctx).__name__
        end = _span(ctx)[1]
        if kind == "MemberInvocationContext":
            return ast.Member(start=start, end=end, source=source, name=_identifier(ctx.identifier()))
        if kind == "FunctionInvocationContext":
            function = ctx.functn()
            params = function.paramList()
            args = tuple(self.expression(p) for p in params.expression()) if params else ()
            return ast.Call(start=start, end=end, source=source, name=_identifier(function.identifier()),
                            args=args, name_start=function.start.start)
        return ast.Special(start=start, end=end, source=source, name=ctx.getText())  # $this, $index, $total

    def literal(self, ctx: Any) -> ast.Literal:
        kind = type(ctx).__name__
        start, end = _span(ctx)
        text = ctx.getText()
        if kind == "NullLiteralContext":
            return ast.Literal(start=start, end=end, kind=ast.NULL, value=None)
        if kind == "BooleanLiteralContext":
            return ast.Literal(start=start, end=end, kind=ast.BOOLEAN_LITERAL, value=text == "true")
        if kind == "StringLiteralContext":
            return ast.Literal(start=start, end=end, kind=ast.STRING, value=_unquote(text))
        if kind == "NumberLiteralContext":
            return ast.Literal(start=start, end=end, kind=ast.NUMBER, value=_number(text))
        if kind == "DateTimeLiteralContext":
            value = text[1:]
            return ast.Literal(start=start, end=end, kind=ast.DATETIME if "T" in value else ast.DATE, value=value)
        if kind == "TimeLiteralContext":
            return ast.Literal(start=start, end=end, kind=ast.TIME, value=text[2:])
        quantity = ctx.quantity()
        unit = quantity.unit()
        unit_text = None
        if unit is not None:
            unit_text = _unquote(unit.getText()) if unit.STRING() else unit.getText()
        return ast.Literal(start=start, end=end, kind=ast.QUANTITY, value=_number(quantity.NUMBER().getText()),
                           unit=unit_text)


# -- the public functions -------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def parse(text: str) -> ast.Node:
    """The syntax tree of a FHIRPath expression; FHIRPathSyntaxError when it is not one, at the
    first error, with its position. The grammar is fhirpathpy's. Parsed once per text: the
    knowledge check and the engine ask for the same expressions. The hand-written parser
    (quickparse) reads what it is sure of, ANTLR the rest, errors included."""
    try:
        return quick_parse(text)
    except NotHandled:
        return antlr_parse(text)


def antlr_parse(text: str) -> ast.Node:
    """`parse` by ANTLR alone: the reference the hand-written parser must agree with."""
    from .antlr import antlr_tree

    return _Builder(text).expression(antlr_tree(text))


@lru_cache(maxsize=8192)
def parse_for_fhirpathpy(text: str) -> tuple[ast.Node, dict[str, Any]]:
    """The syntax tree and, from a strict parse, the tree fhirpathpy evaluates (what
    `fhirpathpy.parser.parse` would give for a valid expression). Only the reference evaluation
    needs fhirpathpy's tree, so `parse` does not build it (a sixth of the knowledge check's time)."""
    from .antlr import antlr_tree, fhirpathpy_tree

    tree = parse(text)  # the strict parse first: its error, with its position, for invalid text
    return tree, fhirpathpy_tree(antlr_tree(text))
