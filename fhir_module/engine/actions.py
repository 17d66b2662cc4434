"""Reading eca-rule PlanDefinition actions: extensions, variables, conditions, topic, severity.

Shared by the applier (conditions, variables), the suggestion maker, the card writer and the
knowledge check, which reads any JSON it is given: each reader takes what is not the expected
shape as absent, never raises.
"""

from __future__ import annotations

from typing import Any

from .clinical._json import as_dict, as_list, dicts
from .expressions import chart_types_read, compiled, template, truthy
from .scope import Definitions, Scope

EXT_VARIABLE = "http://hl7.org/fhir/StructureDefinition/variable"
SEVERITY = {"routine": "info", "urgent": "warning", "asap": "critical", "stat": "critical"}
# RelatedArtifact label of a PlanDefinition's dependency on its module's override-reason CodeSystem.
OVERRIDE_REASONS_LABEL = "override-reasons"


def ext(element: dict[str, Any], suffix: str) -> list[dict[str, Any]]:
    return [e for e in dicts(as_dict(element).get("extension")) if str(e.get("url", "")).endswith(suffix)]


def parts(extension: dict[str, Any]) -> dict[str, Any]:
    """Sub-extensions of a complex extension by name: their value (string or Expression text)."""
    parts = {}
    for part in dicts(as_dict(extension).get("extension")):
        if not isinstance(part.get("url"), str):
            continue
        if "valueString" in part:
            parts[part["url"]] = part["valueString"]
        elif "valueExpression" in part:
            parts[part["url"]] = as_dict(part["valueExpression"]).get("expression", "")
    return parts


def variables(action: dict[str, Any]) -> dict[str, str]:
    return {
        e["valueExpression"]["name"]: e["valueExpression"]["expression"]
        for e in dicts(as_dict(action).get("extension"))
        if e.get("url") == EXT_VARIABLE and isinstance(e.get("valueExpression"), dict)
        and isinstance(e["valueExpression"].get("name"), str) and e["valueExpression"]["name"]
        and isinstance(e["valueExpression"].get("expression"), str) and e["valueExpression"]["expression"]
    }


def policies(action: dict[str, Any]) -> list[str]:
    """The operational definitions (policy parameters) an action uses, for the card to state."""
    return [
        e["valueExpression"]["description"][len("policy: "):]
        for e in dicts(as_dict(action).get("extension"))
        if e.get("url") == EXT_VARIABLE and str(as_dict(e.get("valueExpression")).get("description", "")).startswith("policy: ")
    ]


def applicability(action: dict[str, Any]) -> list[str]:
    """The FHIRPath of an action's applicability conditions, in order."""
    return [text for condition in dicts(as_dict(action).get("condition"))
            if condition.get("kind", "applicability") == "applicability"
            and (text := as_dict(condition.get("expression")).get("expression"))]


class ActionReading:
    """What the evaluator reads of one action, read once from its JSON (see CompiledActions).
    Shared by every request: nothing here may be changed by its readers."""

    __slots__ = ("definitions", "conditions", "applicability", "type", "template", "notes", "name", "for_each",
                 "reads_fired_topics")

    def __init__(self, action: dict[str, Any]) -> None:
        self.definitions = Definitions(variables(action))
        self.applicability = applicability(action)
        self.conditions = tuple(compiled(text) for text in self.applicability)
        self.type = action_type(action)
        self.template = next((parts(t) for t in ext(action, "/card-template")), {})
        self.notes = [parts(note) for note in ext(action, "/card-note")]
        self.name = str(action.get("title") or action.get("id") or "a check")
        self.for_each = next((e["valueExpression"]["expression"] for e in ext(action, "/for-each")), None)
        # Its variables' values depend on when they are read (the topics fired so far): a scope of
        # this action is not one to reuse.
        self.reads_fired_topics = any("firedTopics" in e.variables for e in self.definitions.values())

    def holds(self, scope: Scope) -> bool:
        """Whether every applicability condition is true (a single true: see expressions.truthy)."""
        for expression in self.conditions:
            # expressions.truthy and, once the root is known, Scope.evaluate written out: calls
            # less for every condition of every request.
            root = scope.root
            values = scope.evaluate(expression) if root is None else expression.run(root[0] if root else {}, scope.value)
            if len(values) != 1 or values[0] is not True:
                return False
        return True


def basis(doc: dict[str, Any], bold: bool = True) -> str:
    """What a rule rests on, for the card: a quoted monograph sentence, or the stated policy."""
    mark = "**" if bold else ""
    if doc.get("type") == "justification":
        return f"{mark}Policy:{mark} {doc.get('citation', '')}"
    return f"{mark}Monograph{mark} ({doc.get('display', '')}): \"{doc.get('citation', '')}\""


class CardParts:
    """What a rule's card takes from its action's JSON as it stands: its topic, severity, the
    documents it rests on and their quotes, the operational definitions it used, and the variables
    its card texts name (whose chart records are the card's evidence). Read once per action, when
    its card is first made (see CompiledActions.card); shared by every request, read-only."""

    __slots__ = ("topic_coding", "indicator", "documentation", "quotes", "definitions_used", "card_variables",
                 "cause_variables")

    def __init__(self, action: dict[str, Any], reading: ActionReading) -> None:
        self.topic_coding = topic_coding(action)
        self.indicator = SEVERITY.get(action.get("priority", "routine"), "info")
        self.documentation = tuple(action.get("documentation") or [])
        self.quotes = tuple(basis(doc) for doc in self.documentation if doc.get("citation"))
        used = policies(action)
        self.definitions_used = " Definitions used: " + "; ".join(used) + "." if used else ""
        card = reading.template
        # Each name once, in the order the texts name them (a card's evidence lists the records of
        # each variable its summary, then its detail, names; a merged card's causes, detail then reason).
        self.card_variables = _named(card.get("summary"), card.get("detail"))
        self.cause_variables = _named(card.get("detail"), card.get("reason"))


def _named(*texts: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for text in texts if text for name in template(text).variables))


class CompiledActions:
    """What the evaluator reads of each action (its variables and its applicability conditions,
    compiled; its card template, notes and type), worked out on first use and kept as long as the
    knowledge: a request then reads no action's JSON again. One per KnowledgeBase, whose actions
    do not change once loaded; keyed by the action's identity, which the knowledge holds for its
    whole life."""

    def __init__(self) -> None:
        self._readings: dict[int, ActionReading] = {}
        self._has_notes: dict[int, bool] = {}
        self._children: dict[int, tuple[tuple[dict[str, Any], ActionReading], ...]] = {}
        self._noted: dict[int, tuple[tuple[dict[str, Any], ActionReading], ...]] = {}
        self._cards: dict[int, CardParts] = {}

    def of(self, action: dict[str, Any]) -> ActionReading:
        found = self._readings.get(id(action))
        if found is None:
            found = self._readings[id(action)] = ActionReading(action)
        return found

    def has_notes(self, action: dict[str, Any]) -> bool:
        """Whether the action, or a cause below it (a sub-action that is not a suggestion), has
        card notes: where there are none, the applier has no note to look for."""
        found = self._has_notes.get(id(action))
        if found is None:
            found = self._has_notes[id(action)] = bool(self.of(action).notes) or any(
                self.has_notes(child) for child in action.get("action") or [] if not self.of(child).type)
        return found

    def children(self, action: dict[str, Any]) -> tuple[tuple[dict[str, Any], ActionReading], ...]:
        """The action's sub-actions, each with its reading, in order."""
        found = self._children.get(id(action))
        if found is None:
            found = self._children[id(action)] = tuple((child, self.of(child)) for child in action.get("action") or [])
        return found

    def noted_children(self, action: dict[str, Any]) -> tuple[tuple[dict[str, Any], ActionReading], ...]:
        """The sub-actions that are causes (not suggestions) with notes of their own or below them:
        the only ones whose notes the applier looks at."""
        found = self._noted.get(id(action))
        if found is None:
            found = self._noted[id(action)] = tuple((child, reading) for child, reading in self.children(action)
                                                    if not reading.type and self.has_notes(child))
        return found

    def card(self, action: dict[str, Any]) -> CardParts:
        found = self._cards.get(id(action))
        if found is None:
            found = self._cards[id(action)] = CardParts(action, self.of(action))
        return found

    def definitions(self, action: dict[str, Any]) -> Definitions:
        return self.of(action).definitions

    def scope(self, action: dict[str, Any], parent: Scope) -> Scope:
        """The scope of the action's own variables, under `parent`."""
        return parent.child(self.of(action).definitions)

    def holds(self, action: dict[str, Any], scope: Scope) -> bool:
        return self.of(action).holds(scope)


def action_type(action: dict[str, Any]) -> str | None:
    return next((c.get("code") for c in dicts(as_dict(as_dict(action).get("type")).get("coding"))), None)


def topic_coding(action: dict[str, Any]) -> dict[str, Any] | None:
    """The action's topic as its module codes it (system, code, display)."""
    code = as_dict(action).get("code")
    concepts = code if isinstance(code, list) else [code]
    return next((c for concept in dicts(concepts) for c in dicts(concept.get("coding"))
                 if isinstance(c.get("code"), str) and c["code"]), None)


def topic(action: dict[str, Any]) -> str | None:
    coding = topic_coding(action)
    return coding["code"] if coding else None


def doc_url(doc: dict[str, Any]) -> str | None:
    """A RelatedArtifact's address: `url` in R4, `document.url` in R5."""
    doc = as_dict(doc)
    return doc.get("url") or as_dict(doc.get("document")).get("url")


def requirements(action: dict[str, Any]) -> list[dict[str, Any]]:
    """The DataRequirements of an order kind's `input` (what its rules read from the chart)."""
    found = []
    for item in as_list(as_dict(action).get("input")):
        requirement = item.get("requirement", item) if isinstance(item, dict) else None  # R5 wraps it
        if isinstance(requirement, dict) and isinstance(requirement.get("type"), str) and requirement["type"]:
            found.append(requirement)
    return found


def undeclared_reads(action: dict[str, Any]) -> list[str]:
    """Chart types an order kind's expressions read that its `input` does not ask for."""
    declared = {requirement["type"] for requirement in requirements(action)}
    return sorted(chart_types_read({k: v for k, v in action.items() if k != "input"}) - declared)
