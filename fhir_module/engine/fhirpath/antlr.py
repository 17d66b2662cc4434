"""ANTLR's side of the strict parser: fhirpathpy's generated lexer and parser, run from the
grammar's `entireExpression` rule with an error listener that stops at the first error.

Loaded only when a text needs it (parser.py): the hand-written parser reads every expression of
the built-in knowledge, so the service starts without ANTLR and fhirpathpy (about 120M
instructions of its start); ANTLR places the error in invalid text, and parses what the
hand-written parser leaves to it.
"""

from __future__ import annotations

import re
from typing import Any

from antlr4 import CommonTokenStream, InputStream, Token
from antlr4.error.ErrorListener import ErrorListener
from antlr4.tree.Tree import ParseTreeWalker
from fhirpathpy.parser.ASTPathListener import ASTPathListener
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

from .parser import FHIRPathSyntaxError


class _Stop(Exception):
    def __init__(self, offset: int, problem: str) -> None:
        super().__init__(problem)
        self.offset = offset
        self.problem = problem


def _offset(text: str, line: int, column: int) -> int:
    """ANTLR's (1-based line, 0-based column) as an offset into the text."""
    start = 0
    for _ in range(line - 1):
        start = text.index("\n", start) + 1
    return start + column


_EXPECTING = re.compile(r"\s+expecting\s+(.*)$", re.DOTALL)


def _describe(token: Any) -> str:
    if token is None or token.type == Token.EOF:
        return "end of expression"
    return repr(token.text)


def _problem(message: str, token: Any) -> str:
    """A short message from ANTLR's: what was found and, when the list is short, what was expected."""
    if message.startswith("token recognition error at: "):
        return f"unexpected character {message[len('token recognition error at: '):]}"
    if message.startswith("missing "):
        wanted = message[len("missing "):].split(" at ")[0]
        return f"missing {wanted} before {_describe(token)}"
    expected = _EXPECTING.search(message)
    found = f"unexpected {_describe(token)}"
    if expected:
        choices = expected.group(1).strip()
        if choices == "<EOF>":
            return f"{found}: the expression should end here"
        if not choices.startswith("{") or choices.count(",") < 4:
            return f"{found}, expected {choices.replace('<EOF>', 'end of expression')}"
    return found


class _StopAtFirstError(ErrorListener):
    def __init__(self, text: str) -> None:
        self.text = text

    def syntaxError(self, recognizer, offendingSymbol, line, column, msg, e):  # noqa: N802 - ANTLR's name
        if offendingSymbol is not None and getattr(offendingSymbol, "start", -1) >= 0:
            offset = offendingSymbol.start
        else:
            offset = _offset(self.text, line, column)
        raise _Stop(offset, _problem(msg, offendingSymbol))


def _raise_lexer_error(error: Exception) -> None:
    raise error


def antlr_tree(text: str) -> Any:
    """ANTLR's parse tree of the expression (FHIRPathParser.ExpressionContext), strictly: the first
    syntax error, or trailing input, is a FHIRPathSyntaxError with its position."""
    if not text.strip():
        raise FHIRPathSyntaxError(text, 0, "empty expression")
    listener = _StopAtFirstError(text)
    lexer = FHIRPathLexer(InputStream(text))
    lexer.removeErrorListeners()
    lexer.addErrorListener(listener)
    lexer.recover = _raise_lexer_error  # the listener raises first; never skip a character
    parser = FHIRPathParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    try:
        entire = parser.entireExpression()  # expression EOF: trailing input is an error
    except _Stop as stop:
        raise FHIRPathSyntaxError(text, stop.offset, stop.problem) from None
    return entire.expression()


def fhirpathpy_tree(expression: Any) -> dict[str, Any]:
    """The tree fhirpathpy evaluates, from ANTLR's parse tree of the expression."""
    listener = ASTPathListener()
    ParseTreeWalker().walk(listener, expression)
    return listener.parentStack[0]
