"""Apply eca-rule PlanDefinitions to the orders of one hook request, giving CDS Hooks cards.

This is the generic half of the module: it reads actions, conditions, variables, card templates
and suggestion sub-actions, and knows nothing of the drug. See fhir/plandefinitions.py for the
shape it reads.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from .actions import SEVERITY, action_type, ext, holds, parts, policies, topic, topic_coding, variables
from .cards import SEVERITY_RANK, Card, CardWriter, truncate
from .chart import Chart, ref
from .clinical._json import fmt_rounded
from .expressions import current_facts, number, truthy
from .facts import ChartFacts
from .knowledgebase import KnowledgeBase, ModuleInfo
from .scope import Scope
from .suggestions import SuggestionMaker


class PlanApplier:
    """One request: applies a PlanDefinition to each checked order, then writes the cards."""

    def __init__(self, kb: KnowledgeBase, chart: Chart, today: date, context: dict[str, Any], hook_instance: str):
        self.kb = kb
        self.chart = chart
        self.today = today
        self.facts = ChartFacts(kb, chart, today)
        self.suggester = SuggestionMaker(kb, self.facts)
        self.writer = CardWriter(hook_instance)
        self.module = ModuleInfo.unknown()  # of the PlanDefinition being applied
        self.request_scope = Scope(values={
            "patient": [chart.patient] if chart.patient else [],
            "today": [today.isoformat()],
            "draftOrders": list(chart.drafts),
            "context": [context],
        })

    def apply(self, plan: dict[str, Any], hook: str, orders: list[dict[str, Any]]) -> list[Card]:
        cards: list[Card] = []
        self.module = self.kb.module_of(plan)
        token = current_facts.set(self.facts)
        try:
            for order in orders:
                self.facts.order = order
                fired: list[str] = []
                order_scope = self.request_scope.child(values={"order": [order], "firedTopics": fired})
                for action in plan.get("action") or []:
                    if not any(t.get("name") == hook for t in action.get("trigger") or []):
                        continue
                    cards.extend(self._kind(action, order_scope, order, fired))
        finally:
            current_facts.reset(token)
        return cards

    def kind_applies(self, action: dict[str, Any], order: dict[str, Any]) -> bool:
        """Whether a top-level action (a kind of order) applies to the order, on what the
        request holds: the service asks for a kind's data only when some order is of that kind."""
        token = current_facts.set(self.facts)
        try:
            self.facts.order = order
            scope = self.request_scope.child(values={"order": [order], "firedTopics": []})
            return holds(action, scope.child(variables(action)))
        finally:
            current_facts.reset(token)

    def _kind(self, action: dict[str, Any], parent: Scope, order: dict[str, Any], fired: list[str]) -> list[Card]:
        scope = parent.child(variables(action))
        if not holds(action, scope):
            return []
        cards = []
        for child in action.get("action") or []:
            card = self._rule(child, scope, order)
            if card is not None:
                fired.append(card.topic)
                cards.append(card)
        if cards:  # notes only matter on cards that fire; no need to evaluate them otherwise
            every_card = self.chart.notes + [text for text, _ in self._notes(action, scope, rules=False)]
            about_data = [note for child in action.get("action") or [] if not action_type(child)
                          for note in self._notes(child, scope.child(variables(child)), rules=True)]
            for card in cards:
                notes = every_card + [text for text, needs in about_data if needs <= card.reads]
                notes = list(dict.fromkeys(notes))
                if notes:
                    card.detail += "\n\n**Data notes:**\n" + "\n".join(f"- {note}" for note in notes)
        return cards

    def _notes(self, action: dict[str, Any], scope: Scope, *, rules: bool) -> list[tuple[str, frozenset]]:
        """The notes that hold, with the variables each one's `when` reads: missing or uncertain data,
        said whether or not the rule itself fired. The notes of an order kind are about the order and
        go on every card; a rule's notes (`rules`) go on the cards whose rules read what they read."""
        found = []
        for note in ext(action, "/card-note"):
            note_parts = parts(note)
            if note_parts.get("when") and truthy(scope.evaluate(note_parts["when"])):
                found.append((scope.render(note_parts.get("text")), scope.reads([note_parts["when"]])))
        if rules:
            for child in action.get("action") or []:
                if not action_type(child):  # causes of a merged card, not suggestions
                    found += self._notes(child, scope.child(variables(child)), rules=True)
        return found

    def _rule(self, action: dict[str, Any], parent: Scope, order: dict[str, Any]) -> Card | None:
        scope = parent.child(variables(action))
        if not holds(action, scope):
            return None
        template = next((parts(t) for t in ext(action, "/card-template")), {})
        if template.get("merge"):
            return self._merged(action, scope, order, template)
        coding = topic_coding(action)
        if coding is None:
            return None
        detail = [scope.render(template.get("detail"))]
        detail.append(self._rule_text(action, scope))
        detail.extend(self._quotes(action))
        return Card(
            topic=coding["code"],
            indicator=SEVERITY.get(action.get("priority", "routine"), "info"),
            summary=truncate(scope.render(template.get("summary"))),
            detail="\n\n".join(part for part in detail if part),
            documentation=list(action.get("documentation") or []),
            suggestions=self.suggester.suggestions(action, scope, order),
            orders={ref(order)},
            involves={v for v in scope.evaluate(template["involves"]) if isinstance(v, str)} if template.get("involves") else set(),
            reads=scope.reads(_conditions(action)),
            topic_coding=coding,
            module=self.module,
        )

    def _merged(self, action: dict[str, Any], scope: Scope, order: dict[str, Any], template: dict[str, Any]) -> Card | None:
        """One card for all causes of a topic that hold; the lowest value of the merge variable leads."""
        variable = template["merge"]
        causes = []
        reads: frozenset[tuple[int, str]] = frozenset()
        for child in action.get("action") or []:
            if action_type(child):
                continue  # a suggestion, not a cause
            cause_scope = scope.child(variables(child))
            reads |= cause_scope.reads(_conditions(child))  # every limit the card stands for, fired or not
            if not holds(child, cause_scope):
                continue
            limit = [n for v in cause_scope.value(variable) if (n := number(v)) is not None]
            if not limit:
                continue
            cause_template = next((parts(t) for t in ext(child, "/card-template")), {})
            causes.append({
                variable: limit[0],
                "reason": cause_scope.render(cause_template.get("reason")),
                "detail": cause_scope.render(cause_template.get("detail")),
                "rule": self._rule_text(child, cause_scope),
                "documentation": list(child.get("documentation") or []),
                "indicator": SEVERITY.get(child.get("priority", "routine"), "info"),
            })
        if not causes:
            return None
        causes.sort(key=lambda cause: cause[variable])
        lowest = causes[0]
        scope = scope.child(values={"lowest": [{variable: lowest[variable], "reason": lowest["reason"]}],
                                    "causes": [{variable: c[variable], "reason": c["reason"]} for c in causes]})
        lines = [scope.render(template.get("detail")), f"**Limits that apply** (the lowest, {fmt_rounded(lowest[variable])}, is suggested):"]
        for cause in causes:
            quote = cause["documentation"][0] if cause["documentation"] else {}
            lines.append(f"- {cause['detail']} {cause['rule']} Monograph ({quote.get('display', '')}): "
                         f"\"{quote.get('citation', '')}\"")
        documentation = [doc for cause in causes for doc in cause["documentation"]]
        return Card(
            topic=topic(action) or "",
            topic_coding=topic_coding(action) or {},
            module=self.module,
            indicator=min((c["indicator"] for c in causes), key=SEVERITY_RANK.__getitem__),
            summary=truncate(scope.render(template.get("summary"))),
            detail="\n\n".join([lines[0], "\n".join(lines[1:])]),
            documentation=documentation,
            suggestions=self.suggester.suggestions(action, scope, order),
            orders={ref(order)},
            reads=reads,
        )

    def _rule_text(self, action: dict[str, Any], scope: Scope) -> str:
        text = f"**Rule:** {scope.render(action.get('description'))}"
        definitions = policies(action)
        if definitions:
            text += " Definitions used: " + "; ".join(definitions) + "."
        return text

    @staticmethod
    def _quotes(action: dict[str, Any]) -> list[str]:
        return [
            f"**Monograph** ({doc.get('display', '')}): \"{doc.get('citation', '')}\""
            for doc in action.get("documentation") or []
            if doc.get("citation")
        ]

    # --- suggestions --------------------------------------------------------------------------

    def finish(self, cards: list[Card]) -> list[dict[str, Any]]:
        return self.writer.finish(cards)


def _conditions(action: dict[str, Any]) -> list[str]:
    """The FHIRPath of an action's applicability conditions."""
    return [text for condition in action.get("condition") or []
            if condition.get("kind", "applicability") == "applicability"
            and (text := (condition.get("expression") or {}).get("expression"))]


__all__ = ["PlanApplier", "Card"]
