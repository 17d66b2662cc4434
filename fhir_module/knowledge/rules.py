"""Order kinds, rules, suggestions and merged topics of a knowledge file, checked where they are written.

Every expression is checked for hidden numbers, bare boolean filters and value sets the module does
not define; every rule rests on a quoted monograph sentence whose numbers are its own, or on a stated
policy where no sentence says it; a suggestion of several steps has as many as the drug's titration.
"""

from __future__ import annotations

from typing import Any

from .model import Fact, MergedTopic, Note, OrderKind, Parameter, Rule, Suggestion
from .provenance import Provenance
from .references import valueset_names
from .source import Located

DEFAULT_MERGE_VARIABLE = "limit"


class RuleReader:
    """Reads the rule part of one knowledge file against its value sets, topics and titration."""

    def __init__(self, provenance: Provenance, located: Located, valueset_ids: set[str], topics: set[str],
                 titration_steps: int | None) -> None:
        self.provenance = provenance
        self.located = located
        self.valueset_ids = valueset_ids
        self.topics = topics
        self.titration_steps = titration_steps

    def _expression(self, expression: str, node: Any, where: str, key: Any = None) -> None:
        self.provenance.no_bare_boolean_filters(expression, node, where, key)
        self.provenance.no_number_literals(expression, node, where, key)
        for name in valueset_names(expression):
            if name not in self.valueset_ids:
                raise self.located.error(node, where, f"unknown value set {name!r}", key)

    def order_kind(self, spec: dict[str, Any]) -> OrderKind:
        where = f"order kind {spec['id']}"
        facts = []
        for fact in spec.get("facts", []):
            self._expression(fact["expression"], fact, f"{where}, fact {fact['name']}", "expression")
            note = fact.get("note", {})
            if note:
                self._expression(note["when"], note, f"{where}, fact {fact['name']}, note", "when")
            facts.append(Fact(fact["name"], fact["expression"], note.get("when"), note.get("text")))
        self._expression(spec["match"], spec, where, "match")
        notes = []
        for note in spec.get("notes", []):
            self._expression(note["when"], note, f"{where}, note", "when")
            notes.append(Note(note["when"], note["text"]))
        return OrderKind(spec["id"], spec["title"], spec["match"], tuple(facts), tuple(notes))

    def suggestion(self, spec: dict[str, Any] | None, where: str) -> Suggestion | None:
        if spec is None:
            return None
        for key in ("dose", "target", "targets"):
            if key in spec:
                self._expression(spec[key], spec, where, key)
        steps = tuple((step["dose"], step.get("days")) for step in spec.get("steps", ()))
        for index, (dose, days) in enumerate(steps):
            step = spec["steps"][index]
            self._expression(dose, step, f"{where}, step {index + 1}", "dose")
            if days is not None:
                self._expression(days, step, f"{where}, step {index + 1}", "days")
            elif index < len(steps) - 1:
                raise self.located.error(step, f"{where}, step {index + 1}", "every step but the last says its days")
        if steps and len(steps) != self.titration_steps:
            raise self.located.error(spec, where, f"{len(steps)} steps, but drug.dosing.titration has "
                                     f"{self.titration_steps or 'none'}: the titration is the order they update to", "steps")
        return Suggestion(spec["type"], spec["label"], dose=spec.get("dose"), target=spec.get("target"),
                          targets=spec.get("targets"), unless_topics=tuple(spec.get("unless_topics", ())), steps=steps)

    def rule(self, spec: dict[str, Any], kinds: set[str]) -> Rule:
        where = f"rule {spec['id']}"
        if spec["order_kind"] not in kinds:
            raise self.located.error(spec, where, f"unknown order_kind {spec['order_kind']!r}", "order_kind")
        if spec["topic"] not in self.topics:
            raise self.located.error(spec, where, f"topic {spec['topic']!r} is not in topics", "topic")
        quote = self.provenance.quote(spec["quote"], where) if "quote" in spec else None
        parameters = []
        for name, param in (spec.get("parameters") or {}).items():
            if param["source"] == "monograph":
                if quote is None:
                    raise self.located.error(param, f"{where}, parameter {name}",
                                             "a number from the monograph needs the rule's quote to state it")
                self.provenance.number_in_quote(float(param["value"]), quote, param, f"{where}, parameter {name}", "value")
            parameters.append(Parameter(name, float(param["value"]), param["source"], param.get("why")))
        variables = tuple((spec.get("variables") or {}).items())
        for name, expression in variables:
            self._expression(expression, spec["variables"], f"{where}, variable {name}", name)
        for key in ("condition", "involves"):
            if key in spec:
                self._expression(spec[key], spec, where, key)
        for index, note in enumerate(spec.get("notes", [])):
            self._expression(note["when"], note, f"{where}, note {index + 1}", "when")
        return Rule(
            id=spec["id"],
            topic=spec["topic"],
            order_kind=spec["order_kind"],
            indicator=spec["indicator"],
            title=spec["title"],
            description=spec["description"],
            condition=spec["condition"],
            quote=quote,
            parameters=tuple(parameters),
            variables=variables,
            summary=spec.get("summary"),
            detail=spec.get("detail"),
            reason=spec.get("reason"),
            suggestion=self.suggestion(spec.get("suggestion"), f"{where}, suggestion"),
            extra_suggestions=tuple(self.suggestion(s, f"{where}, extra suggestion {i + 1}")
                                    for i, s in enumerate(spec.get("extra_suggestions", []))),
            involves=spec.get("involves"),
            also_quote=self.provenance.quote(spec["also_quote"], f"{where}, also_quote") if "also_quote" in spec else None,
            notes=tuple(Note(note["when"], note["text"]) for note in spec.get("notes", [])),
            policy=spec.get("policy"),
        )

    def merged_topics(self, specs: dict[str, Any], rules: tuple[Rule, ...], rule_specs: list[dict[str, Any]]) -> dict[str, MergedTopic]:
        """Topics whose rules make one card; each of their rules defines the variable that ranks them."""
        merged: dict[str, MergedTopic] = {}
        for topic, spec in specs.items():
            where = f"merged topic {topic}"
            if topic not in self.topics:
                raise self.located.error(specs, where, "is not in topics", topic)
            variable = spec.get("variable", DEFAULT_MERGE_VARIABLE)
            merged[topic] = MergedTopic(topic, spec["summary"], spec["detail"],
                                        self.suggestion(spec["suggestion"], f"{where}, suggestion"), variable)
        for rule, spec in zip(rules, rule_specs):
            where = f"rule {rule.id}"
            if rule.topic in merged:
                variable = merged[rule.topic].variable
                if rule.reason is None:
                    raise self.located.error(spec, where, f"a rule of merged topic {rule.topic!r} needs a reason")
                if variable not in {p.name for p in rule.parameters} | {name for name, _ in rule.variables}:
                    raise self.located.error(spec, where, f"a rule of merged topic {rule.topic!r} defines "
                                             f"%{variable} (a parameter or variable): the merged card ranks its rules by it")
            elif rule.summary is None:
                raise self.located.error(spec, where, "summary is required")
        return merged
