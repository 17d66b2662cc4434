"""Variables in scope while an action is applied: defined by FHIRPath, evaluated on first use.

A scope chains to its parent (request → order kind → rule → suggestion), so a rule sees its own
parameters and variables, the patient facts of its order kind, and the request's %order, %patient,
%today. Evaluation is lazy: a fact no condition reads is never computed.
"""

from __future__ import annotations

from typing import Any, Callable

from .expressions import Expression, Template, compiled, template
from .failures import EvaluationFailure

# What a card text shows where one of its parts could not be evaluated.
NOT_EVALUATED = "(could not be evaluated)"


class Definitions(dict):
    """Variables compiled once (name → Expression), for many scopes to share; `constants` are the
    literal ones (`%limit = 120`), whose value a scope holds from the start."""

    def __init__(self, definitions: "dict[str, str] | dict[str, Expression]") -> None:
        super().__init__((name, compiled(text) if isinstance(text, str) else text) for name, text in definitions.items())
        self.constants = tuple((name, expression.constant) for name, expression in self.items()
                               if expression.constant is not None)
        self._closures: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {}

    def closure(self, names: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Of the variables `names` and those the definitions among them read in turn: the ones
        defined here, and the others (read from elsewhere). It depends on the definitions alone, so
        it is worked out once per names asked (Scope.reads asks it of every scope it walks)."""
        found = self._closures.get(names)
        if found is None:
            here: dict[str, None] = {}
            elsewhere: dict[str, None] = {}
            pending = list(names)
            while pending:
                name = pending.pop()
                definition = self.get(name)
                if definition is None:
                    elsewhere[name] = None
                elif name not in here:
                    here[name] = None
                    pending += definition.variables
            found = self._closures[names] = (tuple(here), tuple(elsewhere))
        return found


_NO_DEFINITIONS = Definitions({})


class Scope:
    """`report` (given to the root scope, shared by its children) hears of each part of a card
    text that could not be evaluated; other failures propagate as EvaluationFailure."""

    __slots__ = ("parent", "definitions", "values", "report", "_evaluating", "_failed", "root")

    def __init__(
        self,
        parent: "Scope | None" = None,
        definitions: "dict[str, str] | dict[str, Expression] | None" = None,
        values: dict[str, list[Any]] | None = None,
        report: Callable[[EvaluationFailure], None] | None = None,
    ) -> None:
        self.parent = parent
        if type(definitions) is not Definitions:
            definitions = Definitions(definitions) if definitions else _NO_DEFINITIONS
        self.definitions: Definitions = definitions
        if values:
            own = self.values = dict(values)
            for name, constant in definitions.constants:
                if name not in own:
                    own[name] = list(constant)
        else:  # most scopes (a rule's): the constants alone, each named once
            own = self.values = {}
            for name, constant in definitions.constants:
                own[name] = list(constant)
        self.report = report or (parent.report if parent is not None else None)
        # Made when first needed: most scopes define nothing that reads itself or fails.
        self._evaluating: set[str] | None = None
        self._failed: dict[str, EvaluationFailure] | None = None
        # %order, once a value: given here, or the parent's when this scope does not name it
        # (else looked up on first use, see _order). The root of every expression evaluated here;
        # read only (see `evaluate`).
        self.root: list[Any] | None = None
        if "order" in own:
            self.root = own["order"]
        elif parent is not None and "order" not in definitions:
            self.root = parent.root

    def child(self, definitions: "dict[str, str] | dict[str, Expression] | None" = None,
              values: dict[str, list[Any]] | None = None) -> "Scope":
        return Scope(self, definitions, values)

    def value(self, name: str) -> list[Any]:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.values:
                return scope.values[name]
            if name in scope.definitions:
                return scope._define(name)
            scope = scope.parent
        return []  # an unknown variable is empty, as FHIRPath treats missing data

    def reads(self, expressions: "list[Expression | str]") -> frozenset[tuple[int, str]]:
        """Every variable the expressions read, directly or through the definitions they use, each
        named with the scope that defines it (two rules' own `%limit`s are different variables).
        Not evaluated: this is what the expressions need, whatever the data. What a scope's own
        definitions read of one another is worked out once (Definitions.closure); a name they do
        not define is this scope's when it was given as a value, else its parent's to find."""
        found: set[tuple[int, str]] = set()
        names = tuple(name for e in expressions for name in (compiled(e) if isinstance(e, str) else e).variables)
        scope: Scope | None = self
        while names and scope is not None:
            here, elsewhere = scope.definitions.closure(names)
            key = id(scope)
            found.update([(key, name) for name in here])
            outside = []
            for name in elsewhere:
                if name in scope.values:
                    found.add((key, name))
                else:
                    outside.append(name)
            names = tuple(outside)
            scope = scope.parent
        return frozenset(found)

    def _define(self, name: str) -> list[Any]:
        if self._failed is not None and name in self._failed:  # every check that reads it could not be evaluated either
            failed = self._failed[name]
            raise EvaluationFailure(failed.expression, failed.cause_name)
        if self._evaluating is None:
            self._evaluating = set()
        elif name in self._evaluating:  # a definition that reads itself is empty, not a hang
            return []
        self._evaluating.add(name)
        try:
            root = self.root
            if root is None:
                self.values[name] = self.evaluate(self.definitions[name])
            else:  # `evaluate` written out: every variable a request reads is defined here
                self.values[name] = self.definitions[name].run(root[0] if root else {}, self.value)
        except EvaluationFailure as failure:
            # Kept, and raised again, as copies: a failure once raised carries a traceback whose
            # frames hold this scope, a reference cycle that would keep the whole request in
            # memory until a full garbage collection.
            if self._failed is None:
                self._failed = {}
            self._failed[name] = EvaluationFailure(failure.expression, failure.cause_name)
            raise
        finally:
            self._evaluating.discard(name)
        return self.values[name]

    def evaluate(self, expression: Expression | str) -> list[Any]:
        """The expression's value here. (Written out in `_define` and ActionReading.holds, which
        call `run` themselves once the root is known: a call less for most evaluations.)"""
        if isinstance(expression, str):
            expression = compiled(expression)
        root = self.root
        if root is None:
            # The variables first, then %order (which a scope might define), as they always were;
            # the expression then looks its variables up again, each already a value (or failed).
            for name in expression.variables:
                self.value(name)
            root = self._order()
        return expression.run(root[0] if root else {}, self.value)

    def _order(self) -> list[Any]:
        """`value("order")`, the root of every expression, kept once it is a value (the order
        scope's; a value never changes once set)."""
        scope: Scope | None = self
        while scope is not None:
            if "order" in scope.values:
                self.root = scope.values["order"]
                return self.root
            if "order" in scope.definitions:
                return scope._define("order")
            scope = scope.parent
        return []

    def render(self, text: str | Template | None) -> str:
        """A card text with its `{{ }}` parts evaluated; a part that cannot be shows NOT_EVALUATED
        (and is reported): the card still goes out, saying what it could not fill in."""
        if not text:
            return ""
        if isinstance(text, str):
            text = template(text)

        def values(expression: Expression) -> list[Any]:
            try:
                return self.evaluate(expression)
            except EvaluationFailure as failure:
                if self.report is None:
                    raise
                self.report(failure)
                return [NOT_EVALUATED]

        return text.render(values)
