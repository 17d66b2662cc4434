"""Apply eca-rule PlanDefinitions to the orders of one hook request, giving CDS Hooks cards.

This is the generic half of the module: it reads actions, conditions, variables, card templates
and suggestion sub-actions, and knows nothing of the drug. See fhir/plandefinitions.py for the
shape it reads.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any, Callable, TypeVar

from .actions import ActionReading, CardParts, basis
from .cards import SEVERITY_RANK, Card, CardWriter, not_evaluated_card, truncate
from .chart import Chart, ref
from .clinical._json import fmt_rounded
from .expressions import current_facts, number, truthy
from .facts import ChartFacts
from .failures import EvaluationFailure, EvaluationFailures
from .knowledgebase import KnowledgeBase, ModuleInfo
from .scope import Scope
from .suggestions import SuggestionMaker

log = logging.getLogger(__name__)
T = TypeVar("T")


class NotEvaluated:
    """The checks of the current order that could not be evaluated, and the check being evaluated.

    Kept apart from the applier, which the request's scopes must not reach: with the applier's own
    bound method as their `report`, applier -> scope -> method -> applier was a reference cycle
    that kept every request's chart (all its JSON) in memory until a full garbage collection.
    """

    def __init__(self, hook_instance: str, failures: EvaluationFailures | None) -> None:
        self.hook_instance = hook_instance
        self.failures = failures
        self.checking = ""  # the check being evaluated, to name if it cannot be
        self.checks: list[str] = []  # the checks of the current order that could not be

    def report(self, failure: EvaluationFailure) -> None:
        check = self.checking or "a check"
        if check not in self.checks:
            self.checks.append(check)
        if self.failures is not None:
            self.failures.add(check)
        # The failure's text, not the failure: a handler may keep log records (and so the frames
        # of an exception's traceback, with the request's data) for a while.
        log.warning("check %r could not be evaluated (hookInstance %s): %s", check, self.hook_instance, str(failure))


class PlanApplier:
    """One request: applies a PlanDefinition to each checked order, then writes the cards.

    A check whose expressions cannot be evaluated on the request's data is neither "fired" nor
    "fine": it is named on the order's cards, or on a notice card when none fired, and counted
    in `failures` (see failures.py).
    """

    def __init__(self, kb: KnowledgeBase, chart: Chart, today: date, context: dict[str, Any], hook_instance: str,
                 failures: EvaluationFailures | None = None):
        self.kb = kb
        self.actions = kb.actions
        self.chart = chart
        self.today = today
        self.hook_instance = hook_instance
        self.not_evaluated = NotEvaluated(hook_instance, failures)
        self.facts = ChartFacts(kb, chart, today)
        self.suggester = SuggestionMaker(kb, self.facts)
        self.writer = CardWriter(hook_instance)
        self.module = ModuleInfo.unknown()  # of the PlanDefinition being applied
        self.request_scope = Scope(values={
            "patient": [chart.patient] if chart.patient else [],
            "today": [today.isoformat()],
            "draftOrders": list(chart.drafts),
            "context": [context],
        }, report=self.not_evaluated.report)
        # Each action's scope under a given parent, made once: its notes and a merged card's causes
        # read the variables its rule already evaluated. Keyed by identities, the parent held so
        # that its id is not reused.
        self._scopes: dict[tuple[int, int], tuple[Scope, Scope]] = {}
        # What `kind_applies` worked out of each kind's variables for an order (the order held so
        # that its id is not reused): the kind's scope in `apply` starts from those values.
        self._judged: dict[tuple[int, int], tuple[dict[str, Any], Scope]] = {}

    def apply(self, plan: dict[str, Any], hook: str, orders: list[dict[str, Any]]) -> list[Card]:
        cards: list[Card] = []
        self.module = self.kb.module_of(plan)
        token = current_facts.set(self.facts)
        try:
            for order in orders:
                self.facts.order = order
                self.not_evaluated.checks = []
                fired: list[str] = []
                order_scope = self.request_scope.child(values={"order": [order], "firedTopics": fired})
                order_cards: list[Card] = []
                for action in plan.get("action") or []:
                    if not any(t.get("name") == hook for t in action.get("trigger") or []):
                        continue
                    order_cards.extend(self._kind(action, order_scope, order, fired))
                if self.not_evaluated.checks:
                    self._say_not_evaluated(order, order_cards)
                cards.extend(order_cards)
        finally:
            current_facts.reset(token)
        return cards

    # --- checks that could not be evaluated -------------------------------------------------

    def _attempt(self, check: str, evaluate: Callable[..., T], otherwise: T, *arguments: Any) -> T:
        """`evaluate(*arguments)` as part of `check`; if it cannot be evaluated, the check is
        reported and `otherwise` returned. (The arguments passed, not a closure made for each rule.)"""
        previous, self.not_evaluated.checking = self.not_evaluated.checking, check
        try:
            return evaluate(*arguments)
        except EvaluationFailure as failure:
            self.not_evaluated.report(failure)
            return otherwise
        finally:
            self.not_evaluated.checking = previous

    def _say_not_evaluated(self, order: dict[str, Any], cards: list[Card]) -> None:
        """Every card of the order names the checks that could not be evaluated; with no card,
        a notice card does, so that silence never means "checked and fine"."""
        lines = "\n".join(f"- {check}" for check in self.not_evaluated.checks)
        if not cards:
            cards.append(not_evaluated_card(ref(order), self.not_evaluated.checks, self.module))
            return
        for card in cards:
            card.detail += ("\n\n**Not evaluated** (this order's data could not be evaluated by these checks, "
                            f"so they may apply):\n{lines}")

    def kind_applies(self, action: dict[str, Any], order: dict[str, Any]) -> bool:
        """Whether a top-level action (a kind of order) applies to the order, on what the
        request holds: the service asks for a kind's data only when some order is of that kind."""
        token = current_facts.set(self.facts)
        try:
            self.facts.order = order
            scope = self.actions.scope(action, self.request_scope.child(values={"order": [order], "firedTopics": []}))
            self._judged[(id(action), id(order))] = (order, scope)
            return self.actions.holds(action, scope)
        except EvaluationFailure:
            return True  # cannot tell: ask for its data, and the evaluation will say what failed
        finally:
            current_facts.reset(token)

    def _scope(self, action: dict[str, Any], parent: Scope, reading: ActionReading | None = None,
               values: dict[str, list[Any]] | None = None) -> Scope:
        """The scope of the action's variables under `parent` (starting with `values`), the same one
        each time it is asked for in this request (unless its variables read the topics fired so far)."""
        key = (id(action), id(parent))
        found = self._scopes.get(key)
        if found is not None:
            return found[1]
        if reading is None:
            reading = self.actions.of(action)
        scope = Scope(parent, reading.definitions, values)
        if not reading.reads_fired_topics:
            self._scopes[key] = (parent, scope)
        return scope

    def _kind(self, action: dict[str, Any], parent: Scope, order: dict[str, Any], fired: list[str]) -> list[Card]:
        reading = self.actions.of(action)
        scope = self._scope(action, parent, reading, self._judged_values(action, reading, order))
        kind = reading.name
        if not self._attempt(f"{kind}: whether the order is one", reading.holds, False, scope):
            return []
        cards = []
        for child, child_reading in self.actions.children(action):
            card = self._attempt(f"{kind}: {child_reading.name}", self._rule, None,
                                 child, child_reading, scope, order, kind)
            if card is not None:
                fired.append(card.topic)
                cards.append(card)
        if cards:  # notes only matter on cards that fire; no need to evaluate them otherwise
            every_card = self.chart.notes + [text for text, _ in self._notes(action, scope, kind, rules=False)]
            about_data = self._rule_notes(action, scope, kind)
            for card in cards:
                notes = every_card + [text for text, needs in about_data if needs <= card.reads]
                notes = list(dict.fromkeys(notes))
                if notes:
                    card.detail += "\n\n**Data notes:**\n" + "\n".join(f"- {note}" for note in notes)
        return cards

    def _notes(self, action: dict[str, Any], scope: Scope, kind: str, *, rules: bool,
               rule: str | None = None) -> list[tuple[str, frozenset]]:
        """The notes that hold, with the variables each one's `when` reads: missing or uncertain data,
        said whether or not the rule itself fired. The notes of an order kind are about the order and
        go on every card; a rule's notes (`rules`) go on the cards whose rules read what they read.
        A note whose `when` cannot be evaluated is reported as its own check."""
        check = f"{kind}: {rule} (a data note)" if rule else f"{kind} (a data note)"
        found = []
        for note_parts in self.actions.of(action).notes:
            when = note_parts.get("when")
            if when and self._attempt(check, lambda when=when: truthy(scope.evaluate(when)), False):
                found.append((scope.render(note_parts.get("text")), scope.reads([when])))
        if rules:
            found += self._rule_notes(action, scope, kind)
        return found

    def _rule_notes(self, action: dict[str, Any], scope: Scope, kind: str) -> list[tuple[str, frozenset]]:
        """The notes of an action's rules (its children in `scope`): the causes of a merged card,
        not suggestions, and only those with notes to look at."""
        found = []
        for child, child_reading in self.actions.noted_children(action):
            found += self._notes(child, self._scope(child, scope, child_reading), kind, rules=True,
                                 rule=child_reading.name)
        return found

    def _judged_values(self, action: dict[str, Any], reading: ActionReading,
                       order: dict[str, Any]) -> dict[str, list[Any]] | None:
        """The values of the kind's variables that `kind_applies` worked out for the order: the
        same request, chart, order and day give the same values (a kind whose variables read the
        topics fired so far is worked out again; one that failed is evaluated again, and says so)."""
        judged = self._judged.get((id(action), id(order)))
        if judged is None or reading.reads_fired_topics:
            return None
        return judged[1].values

    def _rule(self, action: dict[str, Any], reading: ActionReading, parent: Scope, order: dict[str, Any],
              kind: str) -> Card | None:
        scope = self._scope(action, parent, reading)
        if not reading.holds(scope):
            return None
        template = reading.template
        if template.get("merge"):
            return self._merged(action, scope, order, template, kind)
        card = self.actions.card(action)
        coding = card.topic_coding
        if coding is None:
            return None
        detail = [scope.render(template.get("detail"))]
        detail.append(self._rule_text(action, card, scope))
        detail.extend(card.quotes)
        return Card(
            sources=_sources(scope, card.card_variables),
            topic=coding["code"],
            indicator=card.indicator,
            summary=truncate(scope.render(template.get("summary"))),
            detail="\n\n".join(part for part in detail if part),
            documentation=list(card.documentation),
            suggestions=self.suggester.suggestions(action, scope, order),
            orders={ref(order)},
            involves=self._involves(scope, template.get("involves")),
            reads=scope.reads(reading.conditions),
            topic_coding=coding,
            module=self.module,
        )

    def _involves(self, scope: Scope, expression: str | None) -> set[str]:
        """The other draft orders a fired rule names (its card goes out even if they cannot be read)."""
        if not expression:
            return set()
        try:
            return {v for v in scope.evaluate(expression) if isinstance(v, str)}
        except EvaluationFailure as failure:
            self.not_evaluated.report(failure)
            return set()

    def _merged(self, action: dict[str, Any], scope: Scope, order: dict[str, Any], template: dict[str, Any],
                kind: str) -> Card | None:
        """One card for all causes of a topic that hold; the lowest value of the merge variable leads.
        A cause that cannot be evaluated is said, and the others still make the card."""
        variable = template["merge"]
        causes = []
        children = [(child, child_reading) for child, child_reading in self.actions.children(action)
                    if not child_reading.type]  # causes, not suggestions
        for child, child_reading in children:
            cause = self._attempt(f"{kind}: {child_reading.name}", self._cause, None,
                                  child, child_reading, scope, variable)
            if cause is not None:
                causes.append(cause)
        if not causes:
            return None
        reads: frozenset[tuple[int, str]] = frozenset()
        for child, child_reading in children:  # every limit the card stands for
            reads |= self._scope(child, scope, child_reading).reads(child_reading.conditions)
        causes.sort(key=lambda cause: cause[variable])
        lowest = causes[0]
        scope = scope.child(values={"lowest": [{variable: lowest[variable], "reason": lowest["reason"]}],
                                    "causes": [{variable: c[variable], "reason": c["reason"]} for c in causes]})
        limits = [f"**Limits that apply** (the lowest, {fmt_rounded(lowest[variable])}, is suggested):"]
        limits += [f"- {cause['detail']}" for cause in causes]
        rules = ["**Rules:**"] + [f"- {cause['rule'].removeprefix('**Rule:** ')}" for cause in causes]
        documentation = [doc for cause in causes for doc in cause["documentation"]]
        quotes = ["**What the limits rest on:**"] + list(dict.fromkeys(
            f"- {basis(doc, bold=False)}" for doc in documentation if doc.get("citation")))
        card = self.actions.card(action)
        sources = _sources(scope, card.card_variables)
        return Card(
            sources=list(dict.fromkeys([*sources, *(source for cause in causes for source in cause["sources"])])),
            topic=card.topic_coding["code"] if card.topic_coding else "",
            topic_coding=card.topic_coding or {},
            module=self.module,
            indicator=min((c["indicator"] for c in causes), key=SEVERITY_RANK.__getitem__),
            summary=truncate(scope.render(template.get("summary"))),
            detail="\n\n".join(part for part in [scope.render(template.get("detail")), "\n".join(limits),
                                                  "\n".join(rules), "\n".join(quotes)] if part),
            documentation=documentation,
            suggestions=self.suggester.suggestions(action, scope, order),
            orders={ref(order)},
            reads=reads,
        )

    def _cause(self, action: dict[str, Any], reading: ActionReading, scope: Scope,
               variable: str) -> dict[str, Any] | None:
        cause_scope = self._scope(action, scope, reading)
        if not reading.holds(cause_scope):
            return None
        limit = [n for v in cause_scope.value(variable) if (n := number(v)) is not None]
        if not limit:
            return None
        cause_template = reading.template
        card = self.actions.card(action)
        return {
            variable: limit[0],
            "reason": cause_scope.render(cause_template.get("reason")),
            "detail": cause_scope.render(cause_template.get("detail")),
            "sources": _sources(cause_scope, card.cause_variables),
            "rule": self._rule_text(action, card, cause_scope),
            "documentation": list(card.documentation),
            "indicator": card.indicator,
        }

    @staticmethod
    def _rule_text(action: dict[str, Any], card: CardParts, scope: Scope) -> str:
        return f"**Rule:** {scope.render(action.get('description'))}{card.definitions_used}"

    # --- suggestions --------------------------------------------------------------------------

    def finish(self, cards: list[Card]) -> list[dict[str, Any]]:
        return self.writer.finish(cards)


def _sources(scope: Scope, names: tuple[str, ...]) -> list[str]:
    """The chart records behind the facts a card's texts name: the `sources` of each variable they
    read (`names`, see CardParts)."""
    found: list[str] = []
    for name in names:
        try:
            values = scope.value(name)
        except EvaluationFailure:
            continue  # said on the card already, where the text could not be filled in
        found += [source for value in values if isinstance(value, dict)
                  for source in value.get("sources") or [] if isinstance(source, str)]
    return list(dict.fromkeys(found))


__all__ = ["PlanApplier", "Card"]
