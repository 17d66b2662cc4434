"""FHIRPath for the engine: compiled once, evaluated many times, with the module's generic functions.

Expressions come from the knowledge artifacts. fhirpathpy calls user functions without their
evaluation context, so the facts of the request being evaluated travel in a context variable
(`current_facts`), which keeps compiled expressions shareable across threads and requests.
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, Callable

import math
from decimal import Decimal

from .clinical._json import fmt_rounded
from .failures import EvaluationFailure
from .fhirpath import FHIRPathSyntaxError, call_problems, parse, parse_for_fhirpathpy, variables_used
from .fhirpath.ast import Literal
from .fhirpath.compiler import Compiler, Unsupported
from .fhirpath.reference import apply_parsed_path
from .fhirpath.runtime import MISSING, Deferred, lookup_in
from .fhirpath.typepaths import R4_MODEL
from .functions import CHART_READS, FUNCTIONS, MODULE_FUNCTIONS, fhirpathpy_kinds

log = logging.getLogger(__name__)

# Set by the evaluator for the duration of one order's evaluation (see facts.ChartFacts).
current_facts: ContextVar[Any] = ContextVar("current_facts")

_VARIABLE_REFERENCE = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)")
_TEMPLATE_PART = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_LISTED_PART_ALONE = re.compile(r"\s*- \{\{[^\n]*?\}\}\s*")


class FunctionFailure(RuntimeError):
    """One of the module's own functions failed: a bug to surface, not data to ignore."""


def _user_function(method: str) -> Callable[..., Any]:
    def call(inputs: list[Any], *args: Any) -> Any:
        try:
            return getattr(current_facts.get(), method)(inputs, *args)
        except Exception as error:
            raise FunctionFailure(f"{method} failed: {type(error).__name__}: {error}") from error

    return call


_VARIABLE_READS = {"patient": ("Patient",)}
# A name called. Tried only where a name can start (not after a letter or `_`): from inside a name
# it matches exactly when it would from the name's start, which was tried already; the plain
# pattern backtracked through every suffix of every word of the prose (a third of the knowledge
# load's scan of its actions).
_CALL = re.compile(r"(?<![A-Za-z_])([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def referenced_variables(text: str) -> tuple[str, ...]:
    """The %variables an expression or template names, in order of first use."""
    return tuple(dict.fromkeys(_VARIABLE_REFERENCE.findall(text)))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def chart_types_read(value: Any) -> set[str]:
    """The chart resource types that the FHIRPath in a JSON value (an action with its variables,
    conditions, card templates and sub-actions) reads through the module's functions and
    `%patient`. Every string is read whole, so prose that looks like a call can only add a type:
    asking for too much data is safe, too little is not."""
    found: set[str] = set()
    for text in _strings(value):
        # Most strings are prose, with neither a call nor a variable: not scanned at all.
        if "(" in text:
            for name in _CALL.findall(text):
                found.update(CHART_READS.get(name, ()))
        if "%" in text:
            for name in _VARIABLE_REFERENCE.findall(text):
                found.update(_VARIABLE_READS.get(name, ()))
    return found


USER_FUNCTIONS = {
    name: {"fn": _user_function(method), "arity": fhirpathpy_kinds(function)}
    for name, (method, function) in MODULE_FUNCTIONS.items()
}
_OPTIONS = {"userInvocationTable": USER_FUNCTIONS}
_MODEL = R4_MODEL
_COMPILER = Compiler(
    {name: entry["fn"] for name, entry in USER_FUNCTIONS.items()},
    {name: dict(function.arities) for name, (_, function) in MODULE_FUNCTIONS.items()},
)


class ExpressionError(ValueError):
    """An expression in the knowledge cannot be compiled."""


class Expression:
    """One FHIRPath expression compiled to Python, its syntax tree and the %variables it reads.

    Parsing is strict (engine/fhirpath): an expression with a syntax error, trailing input or a
    call the function table does not allow is refused here, never evaluated as something else.
    The tree is compiled to one Python function (engine/fhirpath/compiler.py) that gives what
    fhirpathpy gives; an expression outside the compiled subset is evaluated by fhirpathpy instead, and says
    so: `native` is False and `not_compiled` holds the reason.
    """

    __slots__ = ("text", "tree", "variables", "native", "not_compiled", "_compiled", "constant")

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self.tree = parse(text)
        except FHIRPathSyntaxError as error:
            raise ExpressionError(f"FHIRPath {text!r}: {error}") from error
        problems = call_problems(self.tree, FUNCTIONS)
        if problems:
            first = FHIRPathSyntaxError(text, problems[0].offset, problems[0].message)
            raise ExpressionError(f"FHIRPath {text!r}: {first}")
        self.variables = tuple(dict.fromkeys(node.name for node in variables_used(self.tree)))
        try:
            self._compiled = _COMPILER.compile(self.tree, text)
            self.native, self.not_compiled = True, None
        except Unsupported as outside:
            log.info("FHIRPath %r is evaluated by fhirpathpy: %s", text, outside)
            self._compiled = self._by_reference
            self.native, self.not_compiled = False, str(outside)
        # A literal (`120`, `'dose-limit'`; most of the knowledge's parameters) has one value
        # whatever the data: worked out now, by the same code, not on every evaluation.
        self.constant: tuple[Any, ...] | None = None
        if self.native and isinstance(self.tree, Literal):
            self.constant = tuple(self._compiled({}, lookup_in({})))

    def reference(self, resource: Any, variables: dict[str, Any]) -> list[Any]:
        """fhirpathpy's value of the expression: what the compiled code must agree with."""
        # fhirpathpy's own tree, built the first time the reference is needed (rarely: most
        # expressions never defer), not for every expression at start.
        return apply_parsed_path(resource, parse_for_fhirpathpy(self.text)[1], variables, _MODEL, _OPTIONS)

    def _by_reference(self, resource: Any, lookup: Callable[[str], Any]) -> list[Any]:
        """fhirpathpy's value, as a new list, with the variables `lookup` gives."""
        variables = {name: value for name in self.variables if (value := lookup(name)) is not MISSING}
        return list(self.reference(resource, variables))

    def value(self, resource: Any, variables: dict[str, Any]) -> list[Any]:
        """The expression's value, by the compiled code; the rare data it leaves to the reference
        (runtime.Deferred) is evaluated by fhirpathpy. Errors are raised."""
        lookup = lookup_in(variables)
        try:
            return self._compiled(resource, lookup)
        except Deferred:
            return self._deferred(resource, lookup)

    def _deferred(self, resource: Any, lookup: Callable[[str], Any]) -> list[Any]:
        log.debug("FHIRPath %r: this evaluation is fhirpathpy's (data typed by its resourceType)", self.text)
        return self._by_reference(resource, lookup)

    def evaluate(self, resource: Any, variables: dict[str, Any]) -> list[Any]:
        """The expression's value with the variables of a mapping (see `run`)."""
        return self.run(resource, lookup_in(variables))

    def run(self, resource: Any, lookup: Callable[[str], Any]) -> list[Any]:
        """The expression's value, with `lookup(name)` giving each variable it reads (in the order
        of `variables`, before anything else is evaluated). EvaluationFailure when it cannot be
        evaluated on this data (never an empty result that would read as "nothing found"); a
        variable that cannot be is its own failure, raised as it is."""
        if self.constant is not None:
            return list(self.constant)
        if resource is None:
            resource = {}
        try:
            try:
                # `value`'s steps, written out: run is called for every evaluation of a request, and
                # a call less counts there. The compiled code gives a new list (runtime.result);
                # fhirpathpy's may not.
                return self._compiled(resource, lookup)
            except Deferred:
                return self._deferred(resource, lookup)
        except EvaluationFailure:
            raise
        except FunctionFailure as error:  # a function of ours met data it did not foresee: a bug to fix
            log.error("FHIRPath %r: %s", self.text, error, exc_info=True)
            raise EvaluationFailure(self.text, error) from error
        except Exception as error:  # noqa: BLE001 - FHIRPath over odd outside data
            # Logged by the applier with the check it stopped; the message may quote patient data.
            log.debug("FHIRPath %r could not be evaluated on this request's data: %s", self.text,
                      type(error).__name__)
            raise EvaluationFailure(self.text, error) from error


@lru_cache(maxsize=4096)
def compiled(text: str) -> Expression:
    return Expression(text)


def number(value: Any) -> float | None:
    """A FHIRPath number (fhirpathpy gives int, float or Decimal) as a float; anything else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def truthy(values: list[Any]) -> bool:
    """FHIRPath boolean of a condition: only a single true is true (empty is unknown, not true)."""
    return len(values) == 1 and values[0] is True


def template_parts(text: str) -> tuple[list[str], str]:
    """The `{{ FHIRPath }}` parts of a card text (stripped), and what is left without them."""
    return [part.strip() for part in _TEMPLATE_PART.findall(text)], _TEMPLATE_PART.sub("", text)


class Template:
    """Text with `{{ FHIRPath }}` parts, rendered from the same variables as the conditions.

    Card details are written one fact per line: on a line that is a list item ("- Serotonergic:
    {{...}}"), a part with several values lists each on a line of its own under it, and a list line
    whose parts all come out empty (a fact the patient does not have) is left out. Elsewhere several
    values are joined with "; "."""

    __slots__ = ("text", "parts", "variables", "_lines")

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts = [compiled(part) for part in template_parts(text)[0]]
        self.variables = tuple(dict.fromkeys(name for part in self.parts for name in part.variables))
        self._lines = self._read_lines()

    def _read_lines(self) -> list[tuple[bool, bool, bool, list[str | Expression] | str]] | None:
        """Each line, worked out once: whether it is a list item, whether its part is the whole item,
        whether it has parts, and its pieces (text and parts in turn). None where the lines match
        more parts than the text holds (a `{{ }}` across lines), which `render` then meets as it goes."""
        lines = []
        parts = iter(self.parts)
        for line in self.text.split("\n"):
            pieces: list[str | Expression] = []
            for position, piece in enumerate(_TEMPLATE_PART.split(line)):
                if position % 2:
                    part = next(parts, None)
                    if part is None:
                        return None
                    pieces.append(part)
                elif piece:
                    pieces.append(piece)
            listed = line.lstrip().startswith("- ")
            alone = _LISTED_PART_ALONE.fullmatch(line) is not None  # "- {{...}}": its values are the list
            has_parts = any(type(piece) is not str for piece in pieces)
            # A line of text alone renders as it is, its end trimmed: worked out now.
            lines.append((listed, alone, has_parts, pieces if has_parts else "".join(pieces).rstrip()))
        return lines

    def render(self, values_of: Callable[[Expression], list[Any]]) -> str:
        if self._lines is None:
            return self._render_matching(values_of)
        lines = []
        for listed, alone, has_parts, pieces in self._lines:
            if not has_parts:
                lines.append(pieces)  # the line's text, trimmed (see _read_lines)
                continue
            rendered, filled = [], False
            for piece in pieces:
                if type(piece) is str:
                    rendered.append(piece)
                    continue
                texts = [text for value in values_of(piece) if (text := format_value(value))]
                filled = filled or bool(texts)
                if listed and len(texts) > 1:
                    rendered.append("\n- ".join(texts) if alone else "".join(f"\n  - {text}" for text in texts))
                else:
                    rendered.append("; ".join(texts))
            if listed and not filled:
                continue  # a listed fact the patient does not have
            line = "".join(rendered)
            # "- Stroke:" before its list: each line's end trimmed.
            lines.append("\n".join(part.rstrip() for part in line.split("\n")) if "\n" in line else line.rstrip())
        return "\n".join(lines)

    def _render_matching(self, values_of: Callable[[Expression], list[Any]]) -> str:
        parts = iter(self.parts)
        lines = []
        for line in self.text.split("\n"):
            listed = line.lstrip().startswith("- ")
            alone = _LISTED_PART_ALONE.fullmatch(line) is not None  # "- {{...}}": its values are the list
            filled: list[bool] = []

            def fill(_: re.Match[str]) -> str:
                texts = [text for text in (format_value(v) for v in values_of(next(parts))) if text]
                filled.append(bool(texts))
                if listed and len(texts) > 1:
                    return "\n- ".join(texts) if alone else "".join(f"\n  - {text}" for text in texts)
                return "; ".join(texts)

            rendered = _TEMPLATE_PART.sub(fill, line)
            if listed and filled and not any(filled):
                continue  # a listed fact the patient does not have
            lines.append("\n".join(part.rstrip() for part in rendered.split("\n")))  # "- Stroke:" before its list
        return "\n".join(lines)


@lru_cache(maxsize=2048)
def template(text: str) -> Template:
    return Template(text)


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float, Decimal)):
        return fmt_rounded(float(value)) if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return str(value.get("evidence") or value.get("text") or value.get("name") or value.get("display") or "")
    return str(value)


def format_values(values: list[Any]) -> str:
    return "; ".join(text for text in (format_value(v) for v in values) if text)
