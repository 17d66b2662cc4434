"""PlanDefinitions: one eca-rule per CDS hook, one action per rule.

Shape (CPG-on-FHIR eca-rule):
- top-level actions, one per kind of order the module checks (a levomilnacipran order, an MAOI
  order), each with the hook as `named-event` trigger, an applicability condition on `%orderMatch`,
  the patient facts as `variable` extensions (FHIRPath, evaluated once per checked order), notes
  about missing data, and the data it reads (`input`, which the service turns into prefetch);
- under them one action per rule: `code` = topic, `priority` = severity (routine → info, urgent →
  warning, stat → critical), `documentation` = the monograph sentence, the rule's parameters and
  variables as `variable` extensions, the card text as a card-template extension, the condition in
  `text/fhirpath`, and the suggestions as sub-actions (`update` with the ActivityDefinition,
  `remove` with the resource to delete);
- rules whose topic merges (dose limits) sit under one action of that topic that makes one card.

`order-sign` carries only warning and critical rules: info cards are for order-select.
"""

from __future__ import annotations

from typing import Any

from fhir_module.engine.expressions import chart_types_read
from fhir_module.engine.knowledgebase import OVERRIDE_REASONS_LABEL
from fhir_module.knowledge import Knowledge, Rule, map_valuesets
from fhir_module.knowledge.model import MergedTopic, OrderKind, Quote, Suggestion

from .activitydefinitions import days_path, dose_path, titration_url, update_dose_url
from .canonical import (
    EXT_CARD_NOTE,
    EXT_CARD_TEMPLATE,
    EXT_FOR_EACH,
    EXT_MONOGRAPH_QUOTE,
    EXT_VARIABLE,
    PROFILE_PLAN_DEFINITION,
)
from .common import R5, artifact, monograph_url, override_reason_system, scoped_id, topic_system, valueset_url

HOOKS = ("order-select", "order-sign")
INDICATORS_BY_HOOK = {"order-select": {"info", "warning", "critical"}, "order-sign": {"warning", "critical"}}
PRIORITY = {"info": "routine", "warning": "urgent", "critical": "stat"}
SEVERITY_ORDER = ("info", "warning", "critical")
FHIRPATH = "text/fhirpath"
ACTION_TYPE = "http://terminology.hl7.org/CodeSystem/action-type"
PLAN_TYPE = "http://terminology.hl7.org/CodeSystem/plan-definition-type"
# What each order kind reads from the chart; the service turns these into prefetch templates.
CHART_TYPES = ("Patient", "MedicationRequest", "MedicationStatement", "Condition", "AllergyIntolerance", "Observation")
LOINC = "http://loinc.org"


def _expression(text: str, name: str | None = None, description: str | None = None) -> dict[str, Any]:
    expression: dict[str, Any] = {"language": FHIRPATH, "expression": text}
    if name:
        expression["name"] = name
    if description:
        expression["description"] = description
    return expression


def _variable(name: str, text: str, description: str | None = None) -> dict[str, Any]:
    return {"url": EXT_VARIABLE, "valueExpression": _expression(text, name, description)}


def _complex(url: str, parts: list[tuple[str, str, Any]]) -> dict[str, Any]:
    """A complex extension from (name, value[x] key, value) parts, skipping empty values."""
    return {"url": url, "extension": [{"url": name, key: value} for name, key, value in parts if value]}


def _note(when: str, text: str) -> dict[str, Any]:
    return _complex(EXT_CARD_NOTE, [("when", "valueExpression", _expression(when)), ("text", "valueString", text)])


def _link(url: str, version: str) -> dict[str, Any]:
    """Where a RelatedArtifact points: R4 has `url`, R5 an attachment (`document.url`)."""
    return {"document": {"url": url}} if version == R5 else {"url": url}


def _citation(knowledge: Knowledge, quote: Quote, version: str) -> dict[str, Any]:
    return {
        "type": "citation",
        "label": quote.sentence.id,
        "display": f"{knowledge.drug['name']} monograph, {quote.section_title}",
        "citation": quote.sentence.text,
        **_link(monograph_url(knowledge, quote.section), version),
        "extension": [{"url": EXT_MONOGRAPH_QUOTE, "valueString": quote.text}],
    }


def _topic(knowledge: Knowledge, topic: str, version: str) -> Any:
    display = dict(knowledge.topics)[topic]
    concept = {"coding": [{"system": topic_system(knowledge), "code": topic, "display": display}]}
    return concept if version == R5 else [concept]


def _suggestion(knowledge: Knowledge, suggestion: Suggestion) -> dict[str, Any]:
    action: dict[str, Any] = {"title": suggestion.label}
    if suggestion.type == "update-dose" and suggestion.steps:
        # The titration, each phase's dose (and days, but the last's) from the rule.
        action["type"] = {"coding": [{"system": ACTION_TYPE, "code": "update"}]}
        action["definitionCanonical"] = titration_url(knowledge)
        action["dynamicValue"] = []
        for phase, (dose, days) in enumerate(suggestion.steps):
            action["dynamicValue"].append({"path": dose_path(phase), "expression": _expression(dose)})
            if days is not None:
                action["dynamicValue"].append({"path": days_path(phase), "expression": _expression(days)})
    elif suggestion.type == "update-dose":
        action["type"] = {"coding": [{"system": ACTION_TYPE, "code": "update"}]}
        action["definitionCanonical"] = update_dose_url(knowledge)
        action["dynamicValue"] = [{"path": dose_path(0), "expression": _expression(suggestion.dose or "")}]
    else:
        action["type"] = {"coding": [{"system": ACTION_TYPE, "code": "remove"}]}
        if suggestion.targets:
            action["extension"] = [{"url": EXT_FOR_EACH, "valueExpression": _expression(suggestion.targets, "target")}]
        action["dynamicValue"] = [{"path": "id", "expression": _expression(suggestion.target or "%target.id")}]
    if suggestion.unless_topics:
        fired = " or ".join(f"$this = '{topic}'" for topic in suggestion.unless_topics)
        action["condition"] = [{
            "kind": "applicability",
            "expression": _expression(f"%firedTopics.where({fired}).empty()"),
        }]
    return action


def _rule_action(knowledge: Knowledge, rule: Rule, version: str) -> dict[str, Any]:
    extensions = [
        _variable(p.name, f"{p.value:g}", "from the monograph" if p.source == "monograph" else f"policy: {p.why}")
        for p in rule.parameters
    ]
    extensions += [_variable(name, text) for name, text in rule.variables]
    extensions.append(_complex(EXT_CARD_TEMPLATE, [
        ("summary", "valueString", rule.summary),
        ("detail", "valueString", rule.detail),
        ("reason", "valueString", rule.reason),
        ("involves", "valueExpression", _expression(rule.involves) if rule.involves else None),
    ]))
    extensions += [_note(note.when, note.text) for note in rule.notes]
    documentation = [_citation(knowledge, quote, version) for quote in rule.quotes]
    if rule.policy:
        # No monograph sentence states the rule: the product decision's reason stands in for one.
        documentation.append({"type": "justification", "label": "policy", "display": f"{knowledge.drug['name']} monograph",
                              "citation": rule.policy, **_link(monograph_url(knowledge), version)})
    action: dict[str, Any] = {
        "id": rule.id,
        "extension": extensions,
        "title": rule.title,
        "description": rule.description,
        "code": _topic(knowledge, rule.topic, version),
        "priority": PRIORITY[rule.indicator],
        "documentation": documentation,
        "condition": [{"kind": "applicability", "expression": _expression(rule.condition)}],
    }
    suggestions = ([rule.suggestion] if rule.suggestion else []) + list(rule.extra_suggestions)
    if suggestions:
        action["selectionBehavior"] = "at-most-one"
        action["action"] = [_suggestion(knowledge, s) for s in suggestions]
    return action


def _merged_action(knowledge: Knowledge, merged: MergedTopic, causes: list[Rule], version: str) -> dict[str, Any]:
    """One card for every rule of the topic that holds: the lowest value of the merge variable wins the summary."""
    severity = max((rule.indicator for rule in causes), key=SEVERITY_ORDER.index)
    return {
        "id": merged.topic,
        "extension": [_complex(EXT_CARD_TEMPLATE, [
            ("summary", "valueString", merged.summary),
            ("detail", "valueString", merged.detail),
            ("merge", "valueString", merged.variable),
        ])],
        "title": dict(knowledge.topics)[merged.topic],
        "code": _topic(knowledge, merged.topic, version),
        "priority": PRIORITY[severity],
        "groupingBehavior": "logical-group",
        "selectionBehavior": "at-most-one",
        "action": [_rule_action(knowledge, rule, version) for rule in causes] + [_suggestion(knowledge, merged.suggestion)],
    }


def _inputs(knowledge: Knowledge, version: str, reads: set[str]) -> list[dict[str, Any]]:
    """The data requirements of an order kind: the chart types its expressions read."""
    observation_codes = [
        {"system": include.system, "code": code}
        for vs in knowledge.valuesets
        for include in vs.includes
        if include.system == LOINC
        for code, _ in include.concepts
    ]
    requirements = []
    for resource_type in (t for t in CHART_TYPES if t in reads):
        requirement: dict[str, Any] = {"type": resource_type}
        if resource_type == "Observation":
            requirement["codeFilter"] = [{"path": "code", "code": observation_codes}]
        requirements.append(requirement)
    if version == R5:
        return [{"requirement": requirement} for requirement in requirements]
    return requirements


def _kind_action(knowledge: Knowledge, kind: OrderKind, hook: str, version: str) -> dict[str, Any] | None:
    rules = [rule for rule in knowledge.rules_for(kind.id) if rule.indicator in INDICATORS_BY_HOOK[hook]]
    if not rules:
        return None
    extensions = [_variable("orderMatch", kind.match)]
    extensions += [_variable(fact.name, fact.expression) for fact in kind.facts]
    extensions += [_note(fact.note_when, fact.note_text) for fact in kind.facts if fact.note_when and fact.note_text]
    extensions += [_note(note.when, note.text) for note in kind.notes]
    children: list[dict[str, Any]] = []
    for topic, merged in knowledge.merged_topics.items():
        causes = [rule for rule in rules if rule.topic == topic]
        if causes:
            children.append(_merged_action(knowledge, merged, causes, version))
    children += [_rule_action(knowledge, rule, version) for rule in rules if rule.topic not in knowledge.merged_topics]
    action = {
        "id": kind.id,
        "extension": extensions,
        "title": kind.title,
        "trigger": [{"type": "named-event", "name": hook}],
        "condition": [{"kind": "applicability", "expression": _expression("%orderMatch.exists()")}],
        "action": children,
    }
    # Only what this kind's rules read: an MAOI order needs the medication list, not the labs.
    reads = chart_types_read(action)
    unknown = reads - set(CHART_TYPES)
    if unknown:
        raise ValueError(f"order kind {kind.id!r} reads {sorted(unknown)}, which no prefetch template serves")
    action["input"] = _inputs(knowledge, version, reads)
    return action


def build_plandefinitions(knowledge: Knowledge, version: str) -> list[dict[str, Any]]:
    drug = knowledge.drug["name"]
    resources = []
    for hook in HOOKS:
        resource = artifact(
            knowledge, "PlanDefinition", scoped_id(knowledge, hook),
            title=f"{drug} checks on {hook}",
            profile=PROFILE_PLAN_DEFINITION,
            description=f"Dose and interaction checks of {drug} orders for the CDS Hooks {hook} hook.",
        )
        resource["type"] = {"coding": [{"system": PLAN_TYPE, "code": "eca-rule", "display": "ECA Rule"}]}
        resource["relatedArtifact"] = [{
            "type": "documentation",
            "display": f"{drug} monograph",
            **_link(monograph_url(knowledge), version),
        }, {
            # The override reasons its cards offer: its own module's, never another's.
            "type": "depends-on",
            "label": OVERRIDE_REASONS_LABEL,
            "display": f"Override reasons of the {knowledge.module['title']}",
            "resource": f"{override_reason_system(knowledge)}|{knowledge.module['version']}",
        }]
        resource["useContext"] = [{
            "code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "task"},
            "valueCodeableConcept": {"text": hook},
        }]
        resource["action"] = [
            _canonical_valuesets(knowledge, action)
            for kind in knowledge.order_kinds if (action := _kind_action(knowledge, kind, hook, version))
        ]
        resources.append(resource)
    return resources


def _canonical_valuesets(knowledge: Knowledge, value: Any) -> Any:
    """The action with every value set its FHIRPath names by knowledge id named by canonical URL:
    the PlanDefinition then says exactly which ValueSet it means, whatever else is loaded beside it."""
    if isinstance(value, str):
        return map_valuesets(value, lambda vs_id: valueset_url(knowledge, vs_id))
    if isinstance(value, list):
        return [_canonical_valuesets(knowledge, item) for item in value]
    if isinstance(value, dict):
        return {key: _canonical_valuesets(knowledge, item) for key, item in value.items()}
    return value


__all__ = ["build_plandefinitions", "HOOKS"]
