"""ClinicalUseDefinition (R5 only): indication, contraindications, interactions, warnings, side effects.

What each one says is read from the knowledge and the parsed monograph, never written here:

- the indication is the knowledge's `drug.indication`, coded from its condition group;
- a rule that names another drug class (a `therapies(...)` value set, directly or through an order
  fact, or the class its order kind matches) is an **interaction** with that class, one resource per
  class, its quoted sentences as the management;
- any other rule that is critical, or whose suggestion removes the order, is a **contraindication**,
  one per rule topic, coded by the condition value sets its expressions name;
- the labelled bullets of the sections those contraindications are quoted from, when no interaction
  or contraindication is quoted from them, are **warnings** (e.g. suicidality, discontinuation);
- every term of a side-effect list with a frequency band is an **undesirable effect**.

R5 allows the subject of a ClinicalUseDefinition to be a medicinal product, Medication or Substance, not
a MedicationKnowledge; the link is therefore `MedicationKnowledge.clinicalUseIssue`, which lists them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fhir_module.knowledge import Knowledge, Rule
from fhir_module.monograph import BulletList, slugify

from .canonical import EXT_MONOGRAPH_QUOTE, PROFILE_CLINICAL_USE_DEFINITION
from .common import R4, artifact
from .terms import publication_status, valueset_concept

_MAX_ID = 64  # FHIR ids are at most 64 characters
_VARIABLE = re.compile(r"%([A-Za-z_]\w*)")


def _calls(expression: str, function: str) -> list[str]:
    """Value set ids passed to `function(...)` in a FHIRPath expression (quoted arguments)."""
    found = []
    for call in re.finditer(rf"\b{function}\(([^)]*)\)", expression):
        found += re.findall(r"'([^']*)'", call.group(1))
    return found


def _expressions(knowledge: Knowledge, rule: Rule) -> list[str]:
    """The rule's own expressions plus the order facts they use, followed transitively."""
    kind = next(k for k in knowledge.order_kinds if k.id == rule.order_kind)
    facts = {fact.name: fact.expression for fact in kind.facts}
    pending = [rule.condition, *(expression for _, expression in rule.variables)]
    seen: list[str] = []
    used: set[str] = set()
    while pending:
        expression = pending.pop(0)
        seen.append(expression)
        for name in _VARIABLE.findall(expression):
            if name in facts and name not in used:
                used.add(name)
                pending.append(facts[name])
    return seen


def interactants(knowledge: Knowledge, rule: Rule) -> list[str]:
    """Drug-class value sets the rule is about, other than the drug's own."""
    own = knowledge.drug["valueset"]
    kind = next(k for k in knowledge.order_kinds if k.id == rule.order_kind)
    found = _calls(kind.match, "medicationMatch")
    for expression in _expressions(knowledge, rule):
        found += _calls(expression, "therapies")
    return [vs for vs in dict.fromkeys(found) if vs != own]


def _conditions(knowledge: Knowledge, rule: Rule) -> list[str]:
    found: list[str] = []
    for expression in _expressions(knowledge, rule):
        found += _calls(expression, "conditions")
    return list(dict.fromkeys(found))


def _is_contraindication(rule: Rule) -> bool:
    removes_order = rule.suggestion is not None and rule.suggestion.type == "remove"
    return rule.indicator == "critical" or removes_order


@dataclass(frozen=True)
class _Plan:
    """What to build, in order: (id, kind, payload)."""

    indication: str | None
    contraindications: dict[str, list[Rule]]  # topic → rules
    interactions: dict[str, list[Rule]]  # value set id → rules
    warnings: list[tuple[str, str]]  # (category, bullet text)
    effects: list[tuple[str, str | None, str]]  # (term, category, band)


def _plan(knowledge: Knowledge) -> _Plan:
    contraindications: dict[str, list[Rule]] = {}
    interactions: dict[str, list[Rule]] = {}
    for rule in knowledge.rules:
        classes = interactants(knowledge, rule)
        if classes:
            for vs_id in classes:
                interactions.setdefault(vs_id, []).append(rule)
        elif _is_contraindication(rule):
            contraindications.setdefault(rule.topic, []).append(rule)
    cited = {quote.sentence.id for rules in (*contraindications.values(), *interactions.values())
             for rule in rules for quote in rule.quotes}
    sections = {rule.quote.section for rules in contraindications.values() for rule in rules if rule.quote}
    warnings: list[tuple[str, str]] = []
    effects: list[tuple[str, str | None, str]] = []
    for section in knowledge.monograph.sections:
        for block in section.blocks:
            if not isinstance(block, BulletList):
                continue
            for bullet in block.items:
                if block.band:
                    effects += [(term, bullet.category, block.band) for term in bullet.terms]
                elif section.id in sections and bullet.category and not {s.id for s in bullet.sentences} & cited:
                    warnings.append((bullet.category, bullet.text))
    indication = f"{knowledge.module['id']}-indication" if knowledge.drug.get("indication") else None
    return _Plan(indication, contraindications, interactions, warnings, effects)


def _id(knowledge: Knowledge, kind: str, name: str) -> str:
    """`<module>-<kind>-<slug of name>`; a gloss in parentheses is left out of the id, not the resource."""
    name = re.sub(r"\([^)]*\)", "", name)
    return f"{knowledge.module['id']}-{kind}-{slugify(name)}"[:_MAX_ID].rstrip("-")


def _quotes(rules: list[Rule]) -> dict[str, Any]:
    """Where each rule's sentence sits, as the PlanDefinitions cite it (monograph-quote extension);
    nothing for rules that rest on a policy."""
    texts = dict.fromkeys(rule.quote.text for rule in rules if rule.quote)
    return {"extension": [{"url": EXT_MONOGRAPH_QUOTE, "valueString": text} for text in texts]} if texts else {}


def indication_id(knowledge: Knowledge) -> str | None:
    return _plan(knowledge).indication


def _ids(knowledge: Knowledge, plan: _Plan) -> list[tuple[str, str, Any]]:
    items: list[tuple[str, str, Any]] = []
    if plan.indication:
        items.append((plan.indication, "indication", None))
    items += [(_id(knowledge, "contraindication", t), "contraindication", r) for t, r in plan.contraindications.items()]
    items += [(_id(knowledge, "interaction", vs), "interaction", (vs, r)) for vs, r in plan.interactions.items()]
    items += [(_id(knowledge, "warning", c), "warning", (c, text)) for c, text in plan.warnings]
    items += [(_id(knowledge, "undesirable-effect", e[0]), "undesirable-effect", e) for e in plan.effects]
    seen: set[str] = set()
    for resource_id, _, _ in items:
        if resource_id in seen:  # two terms that shorten to the same id: stop rather than overwrite
            raise ValueError(f"two clinical use definitions would share the id {resource_id!r}")
        seen.add(resource_id)
    return items


def clinical_use_ids(knowledge: Knowledge) -> list[str]:
    """Ids of every ClinicalUseDefinition, in build order (MedicationKnowledge lists them)."""
    return [resource_id for resource_id, _, _ in _ids(knowledge, _plan(knowledge))]


def _topic_display(knowledge: Knowledge, topic: str) -> str:
    return dict(knowledge.topics).get(topic, topic)


def _body(knowledge: Knowledge, kind: str, payload: Any) -> dict[str, Any]:
    if kind == "indication":
        from .medicationknowledge import indication_concept

        quote = knowledge.quotes.get("indication")
        body: dict[str, Any] = {"diseaseSymptomProcedure": {"concept": indication_concept(knowledge)}}
        if quote:
            body["extension"] = [{"url": EXT_MONOGRAPH_QUOTE, "valueString": quote.text}]
        return {"indication": body}
    if kind == "contraindication":
        rules: list[Rule] = payload
        conditions = [vs for rule in rules for vs in _conditions(knowledge, rule)]
        text = _topic_display(knowledge, rules[0].topic)
        concept = valueset_concept(knowledge, conditions[0], text=text) if len(conditions) == 1 else {"text": text}
        return {"contraindication": {**_quotes(rules), "diseaseSymptomProcedure": {"concept": concept}}}
    if kind == "interaction":
        vs_id, rules = payload
        interaction: dict[str, Any] = {
            **_quotes(rules),
            "interactant": [{"itemCodeableConcept": {"text": knowledge.valueset(vs_id).title}}],
            "type": {"text": _topic_display(knowledge, rules[0].topic)},
        }
        effects = [r.also_quote.sentence.text for r in rules if r.also_quote]
        if effects:
            interaction["effect"] = {"concept": {"text": effects[0]}}
        # What to do: the rules' quoted sentences, or their policy where no sentence states it.
        sentences = list(dict.fromkeys(rule.quote.sentence.text if rule.quote else rule.policy or "" for rule in rules))
        interaction["management"] = [{"text": sentence} for sentence in sentences if sentence]
        return {"interaction": interaction}
    if kind == "warning":
        category, text = payload
        return {"warning": {"description": text, "code": {"text": category}}}
    term, category, band = payload
    effect: dict[str, Any] = {"symptomConditionEffect": {"concept": {"text": term}}}
    if category:
        effect["classification"] = {"text": category}
    effect["frequencyOfOccurrence"] = {"text": band}
    return {"undesirableEffect": effect}


def build_clinical_use_definitions(knowledge: Knowledge, version: str) -> list[dict[str, Any]]:
    """Every ClinicalUseDefinition of the drug (none for R4, which has no such resource)."""
    if version == R4:
        return []
    resources = []
    for resource_id, kind, payload in _ids(knowledge, _plan(knowledge)):
        body = _body(knowledge, kind, payload)
        resource = artifact(knowledge, "ClinicalUseDefinition", resource_id, title=kind,
                            profile=PROFILE_CLINICAL_USE_DEFINITION, canonical=False)
        resource["type"] = kind
        resource["status"] = publication_status(knowledge)
        resource.update(body)
        resources.append(resource)
    return resources
