"""FHIRPath as knowledge writes it, parsed without ANTLR: the same tree, a hundredth of the cost.

ANTLR's Python runtime (parser.py) is exact but slow: about 1 ms an expression, and on a fresh
process more while it builds its prediction tables; the knowledge check parses every expression of
every module at each start (serve, export, validate). This parser reads the same grammar
(fhirpathpy's FHIRPath.g4) by recursive descent with precedence climbing, and builds the same
syntax tree, positions included.

It only answers for text it is sure of. Anything else — a syntax error, a comment, a backslash
in a string or a delimited identifier, a type name followed by a call — raises NotHandled, and
`parser.parse` asks ANTLR, which says where an error is. A differential test holds the two to the
same trees (every node's kind, fields and position) over the knowledge's expressions and over
generated ones.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import NamedTuple

from . import ast


class NotHandled(Exception):
    """Not text this parser is sure of: ANTLR parses it (and says what is wrong, if anything)."""


class _Token(NamedTuple):
    kind: str  # "ID", "DELIMITED", "STRING", "NUMBER", "DATETIME", "TIME", "EOF", or the literal text
    text: str
    start: int
    end: int  # exclusive


# Every literal of the grammar that looks like an identifier is a token of its own (ANTLR's lexer
# prefers the literal on a tie): `div`, `day`, `true` are never member names.
_WORD_LITERALS = frozenset(
    "div mod is as in contains and or xor implies true false "
    "year month week day hour minute second millisecond "
    "years months weeks days hours minutes seconds milliseconds".split())
_CALENDAR_UNITS = frozenset(
    "year month week day hour minute second millisecond "
    "years months weeks days hours minutes seconds milliseconds".split())
# Words that are also identifiers (the grammar's `identifier` rule).
_IDENTIFIER_KINDS = frozenset({"ID", "DELIMITED", "as", "is", "contains", "in"})
_SPECIALS = ("$this", "$index", "$total")

_TIME_FORMAT = r"[0-9]{2}(?::[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?"
_LEXEMES = [
    ("WS", re.compile(r"[ \r\n\t]+")),
    ("TIME", re.compile(r"@T" + _TIME_FORMAT)),
    ("DATETIME", re.compile(r"@[0-9]{4}(?:-[0-9]{2}(?:-[0-9]{2}(?:T" + _TIME_FORMAT + r")?)?)?Z?")),
    ("NUMBER", re.compile(r"[0-9]+(?:\.[0-9]+)?")),
    ("ID", re.compile(r"[A-Za-z_][A-Za-z0-9_]*")),
    # Quoted text without a backslash: a backslash's escape changes where the token ends, so ANTLR reads those.
    ("STRING", re.compile(r"'[^'\\]*'")),
    ("DELIMITED", re.compile(r"`[^`\\]*`")),
    ("PUNCTUATION", re.compile(r"<=|>=|!=|!~|[.\[\]+\-*&|<>=~(){}%,]")),
    # `/` alone; `//` and `/*` open comments, left to ANTLR.
    ("PUNCTUATION", re.compile(r"/(?![/*])")),
]


def _tokens(text: str) -> list[_Token]:
    tokens = []
    position, length = 0, len(text)
    while position < length:
        if text.startswith("$", position):
            name = next((s for s in _SPECIALS if text.startswith(s, position)), None)
            if name is None:
                raise NotHandled
            tokens.append(_Token(name, name, position, position + len(name)))
            position += len(name)
            continue
        for kind, pattern in _LEXEMES:
            match = pattern.match(text, position)
            if match:
                break
        else:
            raise NotHandled  # an unexpected character, an unclosed quote, a comment, an escape
        value, end = match.group(), match.end()
        if kind == "ID" and value in _WORD_LITERALS or kind == "PUNCTUATION":
            kind = value
        if kind != "WS":
            tokens.append(_Token(kind, value, position, end))
        position = end
    tokens.append(_Token("EOF", "", length, length))
    return tokens


def _identifier(token: _Token) -> str:
    return token.text[1:-1] if token.kind == "DELIMITED" else token.text


def _number(text: str) -> int | Decimal:
    return Decimal(text) if "." in text else int(text)


# Binary operators and their precedence (the grammar's order of alternatives: larger binds tighter);
# all are left-associative.
_BINARY = {
    **dict.fromkeys(ast.MULTIPLICATIVE, 10), **dict.fromkeys(ast.ADDITIVE, 9), **dict.fromkeys(ast.UNION, 8),
    **dict.fromkeys(ast.INEQUALITY, 7), **dict.fromkeys(ast.EQUALITY, 5), **dict.fromkeys(ast.MEMBERSHIP, 4),
    "and": 3, "or": 2, "xor": 2, "implies": 1,
}
_INVOCATION, _INDEXER, _POLARITY, _TYPE = 13, 12, 11, 6


class _Parsed(NamedTuple):
    """A node and the extent of the grammar rule it came from (with the parentheses around it,
    which the node's own position leaves out, as ANTLR's tree does)."""

    node: ast.Node
    start: int
    end: int


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def take(self, kind: str | None = None) -> _Token:
        token = self.tokens[self.index]
        if kind is not None and token.kind != kind:
            raise NotHandled
        self.index += 1
        return token

    def entire(self) -> ast.Node:
        parsed = self.expression(0)
        self.take("EOF")
        return parsed.node

    def expression(self, precedence: int) -> _Parsed:
        token = self.peek()
        if token.kind in ("+", "-"):
            self.take()
            operand = self.expression(_POLARITY)
            left = _Parsed(ast.Unary(start=token.start, end=operand.end, op=token.text, operand=operand.node),
                           token.start, operand.end)
        else:
            left = self.term()
        while True:
            token = self.peek()
            kind = token.kind
            if kind == "." and _INVOCATION >= precedence:
                self.take()
                left = self.invocation(left.node, left.start)
            elif kind == "[" and _INDEXER >= precedence:
                self.take()
                index = self.expression(0)
                close = self.take("]")
                left = _Parsed(ast.Indexer(start=left.start, end=close.end, source=left.node, index=index.node),
                               left.start, close.end)
            elif kind in ("is", "as") and _TYPE >= precedence:
                self.take()
                names = [self.take_identifier()]
                while self.peek().kind == "." and self.peek(1).kind in _IDENTIFIER_KINDS:
                    if self.peek(2).kind == "(":
                        raise NotHandled  # `x is A.b()`: ANTLR decides with full context
                    self.take()
                    names.append(self.take_identifier())
                end = names[-1].end
                left = _Parsed(ast.TypeOperation(start=left.start, end=end, op=token.text, operand=left.node,
                                                 type_name=".".join(_identifier(n) for n in names)), left.start, end)
            elif kind in _BINARY and _BINARY[kind] >= precedence:
                self.take()
                right = self.expression(_BINARY[kind] + 1)
                left = _Parsed(ast.Binary(start=left.start, end=right.end, op=token.text, left=left.node,
                                          right=right.node), left.start, right.end)
            else:
                return left

    def take_identifier(self) -> _Token:
        token = self.take()
        if token.kind not in _IDENTIFIER_KINDS:
            raise NotHandled
        return token

    def term(self) -> _Parsed:
        token = self.take()
        kind = token.kind
        if kind == "(":
            inner = self.expression(0)
            close = self.take(")")
            return _Parsed(inner.node, token.start, close.end)
        if kind == "%":
            name = self.take()
            if name.kind == "STRING":
                value = name.text[1:-1]
            elif name.kind in _IDENTIFIER_KINDS:
                value = _identifier(name)
            else:
                raise NotHandled
            return self.node(ast.Variable(start=token.start, end=name.end, name=value))
        if kind in _IDENTIFIER_KINDS or kind in _SPECIALS:
            self.index -= 1
            return self.invocation(None, token.start)
        return self.node(self.literal(token))

    def literal(self, token: _Token) -> ast.Literal:
        kind, start, end = token.kind, token.start, token.end
        if kind == "{":
            end = self.take("}").end
            return ast.Literal(start=start, end=end, kind=ast.NULL, value=None)
        if kind in ("true", "false"):
            return ast.Literal(start=start, end=end, kind=ast.BOOLEAN_LITERAL, value=kind == "true")
        if kind == "STRING":
            return ast.Literal(start=start, end=end, kind=ast.STRING, value=token.text[1:-1])
        if kind == "DATETIME":
            value = token.text[1:]
            return ast.Literal(start=start, end=end, kind=ast.DATETIME if "T" in value else ast.DATE, value=value)
        if kind == "TIME":
            return ast.Literal(start=start, end=end, kind=ast.TIME, value=token.text[2:])
        if kind != "NUMBER":
            raise NotHandled
        unit = self.peek()
        if unit.kind == "STRING" or unit.kind in _CALENDAR_UNITS:
            self.take()
            return ast.Literal(start=start, end=unit.end, kind=ast.QUANTITY, value=_number(token.text),
                               unit=unit.text[1:-1] if unit.kind == "STRING" else unit.text)
        return ast.Literal(start=start, end=end, kind=ast.NUMBER, value=_number(token.text))

    def invocation(self, source: ast.Node | None, start: int) -> _Parsed:
        """A member, a function call or `$this`/`$index`/`$total`, on `source` (None: the focus);
        its node starts where `source`'s rule started."""
        token = self.take()
        if token.kind in _SPECIALS:
            return _Parsed(ast.Special(start=start, end=token.end, source=source, name=token.text), start, token.end)
        if token.kind not in _IDENTIFIER_KINDS:
            raise NotHandled
        name = _identifier(token)
        if self.peek().kind != "(":
            return _Parsed(ast.Member(start=start, end=token.end, source=source, name=name), start, token.end)
        self.take()
        args = []
        if self.peek().kind != ")":
            args.append(self.expression(0).node)
            while self.peek().kind == ",":
                self.take()
                args.append(self.expression(0).node)
        close = self.take(")")
        return _Parsed(ast.Call(start=start, end=close.end, source=source, name=name, args=tuple(args),
                                name_start=token.start), start, close.end)

    @staticmethod
    def node(node: ast.Node) -> _Parsed:
        return _Parsed(node, node.start, node.end)


def quick_parse(text: str) -> ast.Node:
    """The syntax tree ANTLR's parse would give; NotHandled for text this parser leaves to ANTLR."""
    try:
        return _Parser(text).entire()
    except IndexError:  # ran past the end: some text this parser did not foresee
        raise NotHandled from None
