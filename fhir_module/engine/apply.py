"""Apply eca-rule PlanDefinitions to the orders of one hook request, giving CDS Hooks cards.

This is the generic half of the module: it reads actions, conditions, variables, card templates
and suggestion sub-actions, and knows nothing of the drug. See fhir/plandefinitions.py for the
shape it reads.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .chart import Chart, ref
from .clinical._json import fmt_rounded
from .clinical.units import mass_mg
from .expressions import compiled, number, truthy
from .facts import ChartFacts
from .knowledgebase import KnowledgeBase
from .scope import Scope

EXT_VARIABLE = "http://hl7.org/fhir/StructureDefinition/variable"
SEVERITY = {"routine": "info", "urgent": "warning", "asap": "critical", "stat": "critical"}
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
CARD_NAMESPACE = uuid.UUID("6f1c4f8e-6a43-4a58-9a8e-3e0d3c1d9b57")
SUMMARY_LIMIT = 140


def _ext(element: dict[str, Any], suffix: str) -> list[dict[str, Any]]:
    return [e for e in element.get("extension") or [] if str(e.get("url", "")).endswith(suffix)]


def _parts(extension: dict[str, Any]) -> dict[str, Any]:
    """Sub-extensions of a complex extension by name: their value (string or Expression text)."""
    parts = {}
    for part in extension.get("extension") or []:
        if "valueString" in part:
            parts[part["url"]] = part["valueString"]
        elif "valueExpression" in part:
            parts[part["url"]] = part["valueExpression"].get("expression", "")
    return parts


def _variables(action: dict[str, Any]) -> dict[str, str]:
    return {
        e["valueExpression"]["name"]: e["valueExpression"]["expression"]
        for e in action.get("extension") or []
        if e.get("url") == EXT_VARIABLE and isinstance(e.get("valueExpression"), dict)
        and e["valueExpression"].get("name") and e["valueExpression"].get("expression")
    }


def _policies(action: dict[str, Any]) -> list[str]:
    """The operational definitions (policy parameters) an action uses, for the card to state."""
    return [
        e["valueExpression"]["description"][len("policy: "):]
        for e in action.get("extension") or []
        if e.get("url") == EXT_VARIABLE and str((e.get("valueExpression") or {}).get("description", "")).startswith("policy: ")
    ]


def _holds(action: dict[str, Any], scope: Scope) -> bool:
    for condition in action.get("condition") or []:
        if condition.get("kind", "applicability") != "applicability":
            continue
        expression = (condition.get("expression") or {}).get("expression")
        if expression and not truthy(scope.evaluate(expression)):
            return False
    return True


def _action_type(action: dict[str, Any]) -> str | None:
    return next((c.get("code") for c in (action.get("type") or {}).get("coding") or []), None)


def _topic(action: dict[str, Any]) -> str | None:
    code = action.get("code")
    concepts = code if isinstance(code, list) else [code] if isinstance(code, dict) else []
    return next((c.get("code") for concept in concepts for c in concept.get("coding") or []), None)


def _doc_url(doc: dict[str, Any]) -> str | None:
    """A RelatedArtifact's address: `url` in R4, `document.url` in R5."""
    return doc.get("url") or (doc.get("document") or {}).get("url")


_STRENGTH_IN_TEXT = re.compile(r"(\d+(?:[.,]\d+)?)\s*(mg|g|mcg|µg|ug)\b", re.IGNORECASE)


def _strengths_in(text: str) -> list[float]:
    """Strengths written in a drug name ("Fetzima 40 mg"), in mg."""
    found = []
    for value, unit in _STRENGTH_IN_TEXT.findall(text or ""):
        mg = mass_mg(float(value.replace(",", ".")), unit)
        if mg is not None:
            found.append(mg)
    return found


def _truncate(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) < SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 2].rstrip() + "…"


def _set_path(resource: dict[str, Any], path: str, value: Any) -> None:
    """Set a simple FHIRPath-like path (`a[0].b.c`) in a resource, creating what is missing."""
    steps = re.findall(r"([A-Za-z_]\w*)(?:\[(\d+)\])?", path)
    node: Any = resource
    for position, (name, index) in enumerate(steps):
        last = position == len(steps) - 1
        if index:
            items = node.setdefault(name, [])
            while len(items) <= int(index):
                items.append({})
            if last:
                items[int(index)] = value
            node = items[int(index)]
        elif last:
            node[name] = value
        else:
            node = node.setdefault(name, {})


@dataclass
class Card:
    """A card before it is written out, with what is needed to merge cards of one problem."""

    topic: str
    indicator: str
    summary: str
    detail: str
    documentation: list[dict[str, Any]]
    suggestions: list[dict[str, Any]]
    orders: set[str]
    involves: set[str] = field(default_factory=set)

    @property
    def merge_key(self) -> tuple[str, frozenset[str]] | None:
        return (self.topic, frozenset(self.orders | self.involves)) if self.involves else None


class PlanApplier:
    def __init__(self, kb: KnowledgeBase, chart: Chart, today: date, context: dict[str, Any], hook_instance: str):
        self.kb = kb
        self.chart = chart
        self.today = today
        self.facts = ChartFacts(kb, chart, today)
        self.hook_instance = hook_instance
        self.request_scope = Scope(values={
            "patient": [chart.patient] if chart.patient else [],
            "today": [today.isoformat()],
            "draftOrders": list(chart.drafts),
            "context": [context],
        })

    # --- evaluation ---------------------------------------------------------------------------

    def apply(self, plan: dict[str, Any], hook: str, orders: list[dict[str, Any]]) -> list[Card]:
        from .expressions import current_facts

        cards: list[Card] = []
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

    def _kind(self, action: dict[str, Any], parent: Scope, order: dict[str, Any], fired: list[str]) -> list[Card]:
        scope = parent.child(_variables(action))
        if not _holds(action, scope):
            return []
        cards = []
        for child in action.get("action") or []:
            card = self._rule(child, scope, order)
            if card is not None:
                fired.append(card.topic)
                cards.append(card)
        notes = [
            scope.render(parts.get("text"))
            for note in _ext(action, "/card-note")
            if (parts := _parts(note)).get("when") and truthy(scope.evaluate(parts["when"]))
        ]
        if notes:
            for card in cards:
                card.detail += "\n\n**Data notes:**\n" + "\n".join(f"- {note}" for note in notes)
        return cards

    def _rule(self, action: dict[str, Any], parent: Scope, order: dict[str, Any]) -> Card | None:
        scope = parent.child(_variables(action))
        if not _holds(action, scope):
            return None
        template = next((_parts(t) for t in _ext(action, "/card-template")), {})
        if template.get("merge"):
            return self._merged(action, scope, order, template)
        topic = _topic(action)
        if topic is None:
            return None
        detail = [scope.render(template.get("detail"))]
        detail.append(self._rule_text(action, scope))
        detail.extend(self._quotes(action))
        return Card(
            topic=topic,
            indicator=SEVERITY.get(action.get("priority", "routine"), "info"),
            summary=_truncate(scope.render(template.get("summary"))),
            detail="\n\n".join(part for part in detail if part),
            documentation=list(action.get("documentation") or []),
            suggestions=self._suggestions(action, scope, order),
            orders={ref(order)},
            involves={v for v in scope.evaluate(template["involves"]) if isinstance(v, str)} if template.get("involves") else set(),
        )

    def _merged(self, action: dict[str, Any], scope: Scope, order: dict[str, Any], template: dict[str, Any]) -> Card | None:
        """One card for all causes of a topic that hold; the lowest value of the merge variable leads."""
        variable = template["merge"]
        causes = []
        for child in action.get("action") or []:
            if _action_type(child):
                continue  # a suggestion, not a cause
            cause_scope = scope.child(_variables(child))
            if not _holds(child, cause_scope):
                continue
            limit = [n for v in cause_scope.value(variable) if (n := number(v)) is not None]
            if not limit:
                continue
            cause_template = next((_parts(t) for t in _ext(child, "/card-template")), {})
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
            topic=_topic(action) or "",
            indicator=min((c["indicator"] for c in causes), key=SEVERITY_RANK.__getitem__),
            summary=_truncate(scope.render(template.get("summary"))),
            detail="\n\n".join([lines[0], "\n".join(lines[1:])]),
            documentation=documentation,
            suggestions=self._suggestions(action, scope, order),
            orders={ref(order)},
        )

    def _rule_text(self, action: dict[str, Any], scope: Scope) -> str:
        text = f"**Rule:** {scope.render(action.get('description'))}"
        policies = _policies(action)
        if policies:
            text += " Definitions used: " + "; ".join(policies) + "."
        return text

    @staticmethod
    def _quotes(action: dict[str, Any]) -> list[str]:
        return [
            f"**Monograph** ({doc.get('display', '')}): \"{doc.get('citation', '')}\""
            for doc in action.get("documentation") or []
            if doc.get("citation")
        ]

    # --- suggestions --------------------------------------------------------------------------

    def _suggestions(self, action: dict[str, Any], scope: Scope, order: dict[str, Any]) -> list[dict[str, Any]]:
        suggestions = []
        for child in action.get("action") or []:
            kind = _action_type(child)
            if kind not in ("update", "remove") or not _holds(child, scope):
                continue
            for_each = next((e["valueExpression"]["expression"] for e in _ext(child, "/for-each")), None)
            targets = scope.evaluate(for_each) if for_each else [None]
            for target in targets:
                item_scope = scope.child(values={"target": [target]} if target is not None else {})
                label = _truncate(item_scope.render(child.get("title")))
                values = {dv.get("path"): item_scope.evaluate((dv.get("expression") or {}).get("expression", ""))
                          for dv in child.get("dynamicValue") or []}
                if kind == "remove":
                    for resource_id in (v for v in values.get("id", []) if isinstance(v, str)):
                        suggestions.append({"label": label, "actions": [
                            {"type": "delete", "description": label, "resourceId": [resource_id]}]})
                else:
                    resource = self._updated(order, child, values)
                    if resource is not None:
                        suggestions.append({"label": label, "isRecommended": True, "actions": [
                            {"type": "update", "description": label, "resource": resource}]})
        return suggestions

    def _updated(self, order: dict[str, Any], action: dict[str, Any], values: dict[str, list[Any]]) -> dict[str, Any] | None:
        """The draft order with the ActivityDefinition's dosage (dose filled in) and nothing else changed."""
        definition = self.kb.activity_definitions.get(action.get("definitionCanonical"))
        if definition is None or not definition.get("dosage"):
            return None
        template = {"dosage": copy.deepcopy(definition["dosage"])}
        dose = None
        for path, value in values.items():
            numbers = [n for v in value if (n := number(v)) is not None]
            if not numbers or numbers[0] <= 0:
                return None
            dose = numbers[0]
            _set_path(template, path, dose)
        new_dosage = template["dosage"][0]
        original = (order.get("dosageInstruction") or [{}])[0]
        dosage = {k: v for k, v in original.items() if k not in ("timing", "doseAndRate", "text", "sequence", "maxDosePerPeriod")}
        dosage.update(new_dosage)
        quantity = ((new_dosage.get("doseAndRate") or [{}])[0]).get("doseQuantity") or {}
        if dose is not None:
            dosage["text"] = f"{fmt_rounded(dose)} {quantity.get('unit', '')} {new_dosage.get('text', '')}".strip()
        resource = copy.deepcopy(order)
        resource["dosageInstruction"] = [dosage]
        if dose is not None:
            self._swap_product(resource, float(dose))
        return resource

    def _swap_product(self, resource: dict[str, Any], dose_mg: float) -> None:
        """Name the product of the new strength when the ordered product is of another one:
        extended-release capsules are not split. A product named through a Medication reference
        is replaced by the new product's code (and a contained Medication no longer used is dropped);
        one named only in text ("Fetzima 40 mg") by the coded product of the new strength."""
        concepts = self.facts.concepts(resource)
        product = self.kb.product_of(concepts)
        if product is not None:
            if abs(product.strength_mg - dose_mg) < 1e-9:
                return
            replacement = self.kb.product_of_strength(product.system, dose_mg)
        else:
            stated = {mg for name in concepts.names for mg in _strengths_in(name)}
            if not stated or any(abs(mg - dose_mg) < 1e-9 for mg in stated):
                return
            replacement = next((p for p in self.kb.products_named(concepts.names)
                                if abs(p.strength_mg - dose_mg) < 1e-9), None)
        if replacement is None:
            return
        resource["medicationCodeableConcept"] = {
            "coding": [{"system": replacement.system, "code": replacement.code, "display": replacement.display}],
            "text": replacement.display,
        }
        reference = resource.pop("medicationReference", None)
        target = reference.get("reference") if isinstance(reference, dict) else None
        if isinstance(target, str) and target.startswith("#") and isinstance(resource.get("contained"), list):
            still_used = json.dumps({k: v for k, v in resource.items() if k != "contained"})
            if f'"{target}"' not in still_used:
                resource["contained"] = [c for c in resource["contained"]
                                         if not (isinstance(c, dict) and c.get("id") == target[1:])]
                if not resource["contained"]:
                    del resource["contained"]

    # --- output -------------------------------------------------------------------------------

    def finish(self, cards: list[Card]) -> list[dict[str, Any]]:
        merged: list[Card] = []
        by_key: dict[tuple[str, frozenset[str]], Card] = {}
        for card in cards:
            key = card.merge_key
            if key is not None and key in by_key:
                kept = by_key[key]
                known = {(a["type"], tuple(a.get("resourceId") or [])) for s in kept.suggestions for a in s["actions"]}
                for suggestion in card.suggestions:
                    action = suggestion["actions"][0]
                    if (action["type"], tuple(action.get("resourceId") or [])) not in known:
                        kept.suggestions.append(suggestion)
                kept.orders |= card.orders
                continue
            if key is not None:
                by_key[key] = card
            merged.append(card)
        merged.sort(key=lambda card: SEVERITY_RANK[card.indicator])
        return [self._card_json(card) for card in merged]

    def _card_json(self, card: Card) -> dict[str, Any]:
        identity = f"{self.hook_instance}|{card.topic}|{','.join(sorted(card.orders | card.involves))}"
        first = card.documentation[0] if card.documentation else {}
        source: dict[str, Any] = {"label": f"{first.get('display', '').split(',')[0] or 'Knowledge module'} "
                                           f"(fhir_module knowledge {self.kb.version})"}
        if _doc_url(first):
            source["url"] = _doc_url(first)
        source["topic"] = {"system": f"{self.kb.base}/CodeSystem/rule-topic", "code": card.topic,
                           "display": self.kb.topic_displays.get(card.topic, card.topic)}
        result: dict[str, Any] = {
            "uuid": str(uuid.uuid5(CARD_NAMESPACE, identity)),
            "summary": card.summary,
            "detail": card.detail,
            "indicator": card.indicator,
            "source": source,
        }
        links, seen = [], set()
        for doc in card.documentation:
            url = _doc_url(doc)
            if url and url not in seen:
                seen.add(url)
                links.append({"label": doc.get("display") or "Monograph", "url": url, "type": "absolute"})
        if links:
            result["links"] = links
        if card.suggestions:
            for index, suggestion in enumerate(card.suggestions):
                suggestion["uuid"] = str(uuid.uuid5(CARD_NAMESPACE, f"{identity}|{index}"))
            result["suggestions"] = card.suggestions
            result["selectionBehavior"] = "at-most-one"
        if card.indicator in ("warning", "critical") and self.kb.override_reasons:
            result["overrideReasons"] = [dict(reason) for reason in self.kb.override_reasons]
        return result


__all__ = ["PlanApplier", "Card", "compiled"]
