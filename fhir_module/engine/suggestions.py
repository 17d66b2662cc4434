"""Card suggestions from an action's typed sub-actions: `remove` → delete, `update` → the draft again.

An update applies the ActivityDefinition's dosage (with the action's dynamic values) to the
clinician's own draft, keeping its id and everything but the dosage, and names the product of the
new strength when the ordered one is of another (extended-release capsules are not split).
"""

from __future__ import annotations

import json
import re
from typing import Any

from .cards import truncate
from .clinical._json import fmt_rounded
from .clinical.units import mass_mg
from .expressions import number
from .facts import ChartFacts
from .failures import EvaluationFailure
from .knowledgebase import KnowledgeBase
from .paths import DOSAGE_ELEMENT, set_path
from .scope import Scope


_STRENGTH_IN_TEXT = re.compile(r"(\d+(?:[.,]\d+)?)\s*(mg|g|mcg|µg|ug)\b", re.IGNORECASE)


def _strengths_in(text: str) -> list[float]:
    """Strengths written in a drug name ("Fetzima 40 mg"), in mg."""
    found = []
    for value, unit in _STRENGTH_IN_TEXT.findall(text or ""):
        mg = mass_mg(float(value.replace(",", ".")), unit)
        if mg is not None:
            found.append(mg)
    return found


_REPLACED_DOSAGE_ELEMENTS = ("timing", "doseAndRate", "text", "sequence", "maxDosePerPeriod")


def _dose_quantity(dosage: dict[str, Any]) -> dict[str, Any]:
    return ((dosage.get("doseAndRate") or [{}])[0]).get("doseQuantity") or {}


def _dosage_text(dosage: dict[str, Any]) -> str:
    """"20 mg once daily for 2 days": the dose, the definition's own wording, and any duration."""
    quantity = _dose_quantity(dosage)
    text = f"{fmt_rounded(float(quantity['value']))} {quantity.get('unit', '')} " if number(quantity.get("value")) else ""
    text += dosage.get("text", "")
    bounds = ((dosage.get("timing") or {}).get("repeat") or {}).get("boundsDuration") or {}
    if number(bounds.get("value")) is not None:
        unit = {"d": "days", "wk": "weeks", "h": "hours"}.get(bounds.get("code"), bounds.get("unit", ""))
        text += f" for {fmt_rounded(float(bounds['value']))} {unit}"
    return " ".join(text.split())


class SuggestionMaker:
    def __init__(self, kb: KnowledgeBase, facts: ChartFacts) -> None:
        self.kb = kb
        self.facts = facts

    def suggestions(self, action: dict[str, Any], scope: Scope, order: dict[str, Any]) -> list[dict[str, Any]]:
        """The action's suggestions; one that cannot be evaluated on this data is left out and
        reported (the card itself still goes out)."""
        suggestions = []
        for child in action.get("action") or []:
            try:
                suggestions += self._suggestions(child, scope, order)
            except EvaluationFailure as failure:
                if scope.report is None:
                    raise
                scope.report(failure)
        return suggestions

    def _suggestions(self, child: dict[str, Any], scope: Scope, order: dict[str, Any]) -> list[dict[str, Any]]:
        suggestions: list[dict[str, Any]] = []
        reading = self.kb.actions.of(child)
        kind = reading.type
        if kind not in ("update", "remove") or not self.kb.actions.holds(child, scope):
            return suggestions
        for_each = reading.for_each
        targets = scope.evaluate(for_each) if for_each else [None]
        for target in targets:
            item_scope = scope.child(values={"target": [target]} if target is not None else {})
            label = truncate(item_scope.render(child.get("title")))
            values = {dv.get("path"): item_scope.evaluate((dv.get("expression") or {}).get("expression", ""))
                      for dv in child.get("dynamicValue") or []}
            if kind == "remove":
                for resource_id in (v for v in values.get("id", []) if isinstance(v, str)):
                    suggestions.append({"label": label, "actions": [
                        {"type": "delete", "description": label, "resourceId": resource_id}]})
            else:
                resource = self._updated(order, child, values)
                if resource is not None:
                    suggestions.append({"label": label, "isRecommended": True, "actions": [
                        {"type": "update", "description": label, "resource": resource}]})
        return suggestions

    def _updated(self, order: dict[str, Any], action: dict[str, Any], values: dict[str, list[Any]]) -> dict[str, Any] | None:
        """The draft order with the ActivityDefinition's dosages (values filled in) and nothing else
        changed: route and other details of the draft's first dosage are kept in each."""
        definition = self.kb.activity_definitions.get(action.get("definitionCanonical"))
        if definition is None or not definition.get("dosage"):
            return None
        # The MedicationRequest the definition creates: its dosages, which the dynamic values address.
        template = {"dosageInstruction": self.kb.fresh_copy(definition["dosage"])}
        for path, value in values.items():
            numbers = [n for v in value if (n := number(v)) is not None]
            if not numbers or numbers[0] <= 0:
                return None  # a suggestion with no sensible number is no suggestion
            if not path.startswith(f"{DOSAGE_ELEMENT}["):
                return None  # a value for some other element: not a dose this engine can propose
            set_path(template, path, numbers[0])
        original = (order.get("dosageInstruction") or [{}])[0]
        kept = {k: v for k, v in original.items() if k not in _REPLACED_DOSAGE_ELEMENTS}
        dosages = [{**kept, **phase, "text": _dosage_text(phase)} for phase in template["dosageInstruction"]]
        # The draft's own parts are shared, not copied: the suggestion replaces whole elements of
        # its copy (dosages, the product, `contained`) and never changes one in place.
        resource = {**order, "dosageInstruction": dosages}
        doses = [number(_dose_quantity(dosage).get("value")) for dosage in dosages]
        defaults = [number(_dose_quantity(dosage).get("value")) for dosage in definition["dosage"]]
        product = definition.get("productCodeableConcept")
        if len(set(doses)) > 1 and isinstance(product, dict) and doses == defaults:
            # Phases of different strengths: the definition's product (a titration pack) gives
            # each phase as one capsule, where one strength would need several of one.
            _name_product(resource, self.kb.fresh_copy(product))
        elif doses[0] is not None:
            self._swap_product(resource, doses[0])
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
            replacement = self.kb.product_for_dose(self.kb.products_like(product), dose_mg, like=product.display)
        else:
            stated = {mg for name in concepts.names for mg in _strengths_in(name)}
            if not stated or any(abs(mg - dose_mg) < 1e-9 for mg in stated):
                return
            replacement = self.kb.product_for_dose(self.kb.products_named(concepts.names), dose_mg, like=" ".join(concepts.names))
        if replacement is None:
            return
        _name_product(resource, {
            "coding": [{"system": replacement.system, "code": replacement.code, "display": replacement.display}],
            "text": replacement.display,
        })


def _name_product(resource: dict[str, Any], concept: dict[str, Any]) -> None:
    """The order names *concept* as its medication: a Medication reference gives way to it, and a
    contained Medication no longer used is dropped."""
    resource["medicationCodeableConcept"] = concept
    reference = resource.pop("medicationReference", None)
    target = reference.get("reference") if isinstance(reference, dict) else None
    if isinstance(target, str) and target.startswith("#") and isinstance(resource.get("contained"), list):
        still_used = json.dumps({k: v for k, v in resource.items() if k != "contained"})
        if f'"{target}"' not in still_used:
            resource["contained"] = [c for c in resource["contained"]
                                     if not (isinstance(c, dict) and c.get("id") == target[1:])]
            if not resource["contained"]:
                del resource["contained"]
