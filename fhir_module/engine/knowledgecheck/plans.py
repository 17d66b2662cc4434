"""PlanDefinitions read the way the engine applies them (apply.py, suggestions.py, actions.py).

Every expression is parsed strictly and every `%variable` must be defined in the scope the engine
evaluates it in: the request's values, the order kind's variables, the rule's own, and for a
merged topic `%lowest`/`%causes` (whose fields are the merge variable and `reason`). Each rule
has a topic from a CodeSystem of the knowledge and a summary; a merged topic's causes each define
its merge variable; a suggestion is an `update` from an ActivityDefinition of the knowledge whose
dynamicValue paths address its dosage, or a `remove` with the `id` to delete.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from typing import Any, Callable, NamedTuple

from ..clinical._json import as_list

from ..actions import EXT_VARIABLE, OVERRIDE_REASONS_LABEL, SEVERITY, action_type, ext, parts
from ..expressions import template_parts
from ..fhirpath import (FHIRPathSyntaxError, ast, call_problems, describe_position, parse, presence_traps,
                        valueset_arguments, variables_used)
from ..functions import FUNCTIONS
from ..paths import DYNAMIC_VALUE_BASE, path_problem
from .artifacts import Monographs
from .findings import WARNING, Finding
from .index import Index, label

FHIRPATH = "text/fhirpath"
# What PlanApplier puts in every scope (and %ucum, which fhirpathpy always defines).
REQUEST_VALUES = ("patient", "today", "draftOrders", "context", "order", "firedTopics", "ucum")
MERGE_RECORD_FIELDS = ("reason",)  # besides the merge variable itself, what %lowest and %causes hold
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Report = Callable[[str, str, str], None]  # (element, message, action)


class Analysis(NamedTuple):
    """What the check learns of an expression from its text alone, wherever it is written."""

    tree: ast.Node
    problems: tuple[Any, ...]  # the calls' and presence traps' (fhirpath.analysis.Problem)
    variables: tuple[ast.Variable, ...]  # every %name read, in source order
    record_reads: tuple[ast.Member, ...]  # %name.field
    valuesets: tuple[ast.Literal, ...]  # value sets named by the calls


@lru_cache(maxsize=8192)
def analysis(text: str) -> Analysis:
    """The expression's `Analysis`; FHIRPathSyntaxError when it is not one. Worked out once per
    text: the same expressions recur across a module's variables, conditions and card texts
    (702 checked, 219 different, in the built-in modules), and each walk of the tree was made for
    every one of them."""
    tree = parse(text)
    return Analysis(
        tree,
        (*call_problems(tree, FUNCTIONS), *presence_traps(tree)),
        tuple(variables_used(tree)),
        tuple(node for node in tree.walk() if isinstance(node, ast.Member) and isinstance(node.source, ast.Variable)),
        tuple(valueset_arguments(tree, FUNCTIONS)),
    )


class Scope:
    """The names an expression may read where the engine evaluates it."""

    def __init__(self, parent: "Scope | None" = None, names: tuple[str, ...] = (),
                 records: dict[str, tuple[str, ...]] | None = None) -> None:
        self.parent = parent
        self.names = set(names)
        # Variables whose value is a record with known fields (%lowest.limit, %causes.reason).
        self.records = dict(records or {})

    def child(self, names: tuple[str, ...] = (), records: dict[str, tuple[str, ...]] | None = None) -> "Scope":
        return Scope(self, names, records)

    def defines(self, name: str) -> bool:
        return name in self.names or (self.parent is not None and self.parent.defines(name))

    def all_names(self) -> set[str]:
        return self.names | (self.parent.all_names() if self.parent else set())

    def record_fields(self, name: str) -> tuple[str, ...] | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.records.get(name)
            scope = scope.parent
        return None


def _topic_coding(action: dict[str, Any]) -> dict[str, Any] | None:
    code = action.get("code")
    concepts = code if isinstance(code, list) else [code] if isinstance(code, dict) else []
    return next((c for concept in concepts if isinstance(concept, dict)
                 for c in as_list(concept.get("coding")) if isinstance(c, dict) and isinstance(c.get("code"), str)), None)


def _concept_codes(code_system: dict[str, Any]) -> set[str]:
    found: set[str] = set()

    def walk(concepts: Any) -> None:
        for concept in concepts if isinstance(concepts, list) else []:
            if isinstance(concept, dict):
                if isinstance(concept.get("code"), str):
                    found.add(concept["code"])
                walk(concept.get("concept"))

    walk(code_system.get("concept"))
    return found


def _descendants(action: dict[str, Any]) -> list[dict[str, Any]]:
    found = [action]
    for child in as_list(action.get("action")):
        if isinstance(child, dict):
            found += _descendants(child)
    return found


def _action_name(action: dict[str, Any], path: str) -> str:
    """An action as a knowledge engineer finds it: its id, else its title, else its place."""
    return str(action.get("id") or action.get("title") or path.rsplit(".", 1)[-1])


class PlanChecker:
    """Checks one eca-rule PlanDefinition; `used` collects the artifacts it needs (for their own checks)."""

    def __init__(self, index: Index, monographs: Monographs, plan: dict[str, Any], findings: list[Finding],
                 used: dict[str, tuple[dict[str, Any], str]]) -> None:
        self.index = index
        self.monographs = monographs
        self.plan = plan
        self.artifact = label(plan)
        self.findings = findings
        self.used = used
        self.base = str(plan.get("url", "")).rsplit("/PlanDefinition/", 1)[0]

    def report(self, element: str, message: str, action: str = "") -> None:
        self.findings.append(Finding(self.artifact, element, message, action))

    def use(self, resource: dict[str, Any], why: str) -> None:
        self.used.setdefault(label(resource), (resource, f"{self.artifact} {why}"))

    # -- the walk ----------------------------------------------------------------------------------

    def check(self) -> None:
        actions = self.plan.get("action")
        if not isinstance(actions, list) or not actions:
            self.report("action", "has no actions: it checks nothing")
            return
        request = Scope(names=REQUEST_VALUES)
        for i, action in enumerate(actions):
            if isinstance(action, dict):
                self.order_kind(action, f"action[{i}]", request)
        self.dependencies()

    def dependencies(self) -> None:
        """What the PlanDefinition depends on is in the knowledge; warning and critical cards carry
        the override reasons of its module, which it names as a dependency."""
        reasons = None
        for k, artifact in enumerate(as_list(self.plan.get("relatedArtifact"))):
            if not isinstance(artifact, dict) or artifact.get("type") != "depends-on":
                continue
            resource = self.index.canonical(artifact.get("resource"))
            if resource is None:
                self.report(f"relatedArtifact[{k}].resource", f"depends on {artifact.get('resource')!r}, "
                                                               "which is not in the knowledge")
                continue
            self.use(resource, f"relatedArtifact[{k}]")
            if artifact.get("label") == OVERRIDE_REASONS_LABEL:
                reasons = resource
        loud = [a for a in self.plan.get("action") or [] if isinstance(a, dict)
                for a in _descendants(a) if a.get("priority") in ("urgent", "asap", "stat")]
        if loud and (reasons is None or reasons.get("resourceType") != "CodeSystem" or not _concept_codes(reasons)):
            # Cards without them still go out (CDS Hooks makes them optional): a warning, not a refusal.
            self.findings.append(Finding(self.artifact, "relatedArtifact", "its warning and critical cards will "
                                         f"offer no override reasons: no depends-on '{OVERRIDE_REASONS_LABEL}' "
                                         "CodeSystem with concepts", severity=WARNING))

    def order_kind(self, action: dict[str, Any], path: str, request: Scope) -> None:
        name = _action_name(action, path)
        triggers = [t for t in as_list(action.get("trigger")) if isinstance(t, dict)
                    and t.get("type") == "named-event" and t.get("name")]
        if not triggers:
            self.report(f"{path}.trigger", "has no named-event trigger: this order kind never runs", name)
        scope = self.variables(action, path, request, name)
        self.conditions(action, path, scope, name)
        self.notes(action, path, scope, name)
        for j, child in enumerate(as_list(action.get("action"))):
            if not isinstance(child, dict):
                continue
            child_path = f"{path}.action[{j}]"
            if action_type(child):
                self.report(f"{child_path}.type", "a suggestion directly under an order kind is never offered: "
                                                  "suggestions belong to a rule", name)
            elif (self.template(child) or {}).get("merge") is not None:
                self.merged(child, child_path, scope, name)
            else:
                self.rule(child, child_path, scope, name)

    def rule(self, action: dict[str, Any], path: str, parent: Scope, parent_name: str) -> None:
        name = f"{parent_name} > {_action_name(action, path)}"
        scope = self.variables(action, path, parent, name)
        self.conditions(action, path, scope, name)
        self.notes(action, path, scope, name)
        self.card(action, path, scope, name)
        for j, child in enumerate(as_list(action.get("action"))):
            if not isinstance(child, dict):
                continue
            if action_type(child):
                self.suggestion(child, f"{path}.action[{j}]", scope, name)
            else:
                self.report(f"{path}.action[{j}]", "an action under a rule that is not a suggestion (update or "
                                                   "remove) is never applied", name)

    def merged(self, action: dict[str, Any], path: str, parent: Scope, parent_name: str) -> None:
        """One card for every cause that holds; the engine reads the merge variable of each cause."""
        name = f"{parent_name} > {_action_name(action, path)}"
        template, template_path = self.template_with_path(action, path)
        variable = (template or {}).get("merge")
        if not isinstance(variable, str) or not _NAME.fullmatch(variable):
            self.report(f"{template_path}.extension('merge')", f"the merge variable must be a name, not {variable!r}", name)
            return
        scope = self.variables(action, path, parent, name)
        self.conditions(action, path, scope, name)
        self.notes(action, path, scope, name)
        causes = [(j, c) for j, c in enumerate(as_list(action.get("action"))) if isinstance(c, dict) and not action_type(c)]
        if not causes:
            self.report(f"{path}.action", f"merged topic with no causes: it never makes a card", name)
        for j, cause in causes:
            cause_path = f"{path}.action[{j}]"
            cause_name = f"{name} > {_action_name(cause, cause_path)}"
            cause_scope = self.variables(cause, cause_path, scope, cause_name)
            if not cause_scope.defines(variable):
                self.report(f"{cause_path}.extension", f"the merged topic reads %{variable} of each cause, but this "
                            f"cause does not define it{self._hint(variable, cause_scope)}", cause_name)
            self.conditions(cause, cause_path, cause_scope, cause_name)
            self.notes(cause, cause_path, cause_scope, cause_name)
            cause_template, template_path = self.template_with_path(cause, cause_path)
            for key in ("reason", "detail"):
                self.text((cause_template or {}).get(key), cause_scope, f"{template_path}.extension('{key}')", cause_name)
            self.text(cause.get("description"), cause_scope, f"{cause_path}.description", cause_name)
            self.priority(cause, cause_path, cause_name)
            self.documentation(cause, cause_path, cause_name)
            for k, child in enumerate(as_list(cause.get("action"))):
                if isinstance(child, dict):
                    self.report(f"{cause_path}.action[{k}]", "a cause of a merged topic has no actions of its own: "
                                                             "its suggestions belong to the merged topic", cause_name)
        fields = (variable, *MERGE_RECORD_FIELDS)
        merged_scope = scope.child(("lowest", "causes"), {"lowest": fields, "causes": fields})
        self.card(action, path, merged_scope, name, merged=True)
        for j, child in enumerate(as_list(action.get("action"))):
            if isinstance(child, dict) and action_type(child):
                self.suggestion(child, f"{path}.action[{j}]", merged_scope, name)

    # -- the parts of an action --------------------------------------------------------------------

    def variables(self, action: dict[str, Any], path: str, parent: Scope, name: str) -> Scope:
        """The action's variables, each checked in the scope they define (they may read each other)."""
        definitions: dict[str, tuple[str, str]] = {}
        for k, extension in enumerate(as_list(action.get("extension"))):
            if not isinstance(extension, dict) or extension.get("url") != EXT_VARIABLE:
                continue
            element = f"{path}.extension[{k}].valueExpression"
            value = extension.get("valueExpression")
            if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not _NAME.fullmatch(value["name"]):
                self.report(element, "a variable needs a name (letters, digits, _) and an expression", name)
                continue
            if not self.language(value, element, name):
                continue
            if value["name"] in definitions:
                self.report(f"{element}.name", f"%{value['name']} is defined twice in this action", name)
            definitions[value["name"]] = (value.get("expression"), f"{element}.expression")
        scope = parent.child(tuple(definitions))
        trees = {var: self.expression(text, scope, element, name) for var, (text, element) in definitions.items()}
        self.cycles(trees, definitions, name)
        return scope

    def cycles(self, trees: dict[str, ast.Node | None], definitions: dict[str, tuple[str, str]], name: str) -> None:
        """A variable that needs itself (directly or through others of the same action) evaluates empty."""
        reads = {var: {v.name for v in variables_used(tree) if v.name in trees} if tree else set()
                 for var, tree in trees.items()}
        for start in trees:
            seen, stack = set(), list(reads[start])
            while stack:
                current = stack.pop()
                if current == start:
                    self.report(definitions[start][1], f"%{start} depends on itself", name)
                    break
                if current not in seen:
                    seen.add(current)
                    stack.extend(reads[current])

    def conditions(self, action: dict[str, Any], path: str, scope: Scope, name: str) -> None:
        for k, condition in enumerate(as_list(action.get("condition"))):
            element = f"{path}.condition[{k}]"
            if not isinstance(condition, dict):
                continue
            if condition.get("kind", "applicability") != "applicability":
                self.report(f"{element}.kind", f"only applicability conditions are evaluated: this "
                                               f"{condition.get('kind')!r} condition would be ignored", name)
                continue
            expression = condition.get("expression")
            if not isinstance(expression, dict) or not self.language(expression, f"{element}.expression", name):
                if not isinstance(expression, dict):
                    self.report(f"{element}.expression", "a condition needs an expression", name)
                continue
            self.expression(expression.get("expression"), scope, f"{element}.expression.expression", name)

    def notes(self, action: dict[str, Any], path: str, scope: Scope, name: str) -> None:
        for k, extension in enumerate(as_list(action.get("extension"))):
            if not isinstance(extension, dict) or not str(extension.get("url", "")).endswith("/card-note"):
                continue
            element = f"{path}.extension[{k}]"
            note = parts(extension)
            if not note.get("when"):
                self.report(element, "a card note needs a 'when' expression: without it the note is never said", name)
            else:
                self.expression(note["when"], scope, f"{element}.extension('when')", name)
            if not note.get("text"):
                self.report(element, "a card note needs a text", name)
            self.text(note.get("text"), scope, f"{element}.extension('text')", name)

    def template(self, action: dict[str, Any]) -> dict[str, Any] | None:
        return self.template_with_path(action, "")[0]

    @staticmethod
    def template_with_path(action: dict[str, Any], path: str) -> tuple[dict[str, Any] | None, str]:
        for k, extension in enumerate(as_list(action.get("extension"))):
            if isinstance(extension, dict) and str(extension.get("url", "")).endswith("/card-template"):
                return parts(extension), f"{path}.extension[{k}]"
        return None, f"{path}.extension"

    def card(self, action: dict[str, Any], path: str, scope: Scope, name: str, *, merged: bool = False) -> None:
        """What makes the card: topic, severity, summary and detail, the rule's text and quotes."""
        template, template_path = self.template_with_path(action, path)
        if template is None or not template.get("summary"):
            self.report(template_path, "a rule needs a card-template with a summary: its card would have none", name)
        for key in ("summary", "detail"):
            self.text((template or {}).get(key), scope, f"{template_path}.extension('{key}')", name)
        if (template or {}).get("involves"):
            self.expression(template["involves"], scope, f"{template_path}.extension('involves')", name)
        self.topic(action, path, name)
        self.priority(action, path, name)
        if not merged:
            self.text(action.get("description"), scope, f"{path}.description", name)
            self.documentation(action, path, name)

    def topic(self, action: dict[str, Any], path: str, name: str) -> None:
        coding = _topic_coding(action)
        if coding is None:
            self.report(f"{path}.code", "has no topic code: a rule without a topic never makes a card", name)
            return
        system = self.index.canonical(coding.get("system"), "CodeSystem")
        if system is None:
            self.report(f"{path}.code", f"topic system {coding.get('system')!r} is not a CodeSystem of the knowledge", name)
        elif coding["code"] not in _concept_codes(system):
            self.report(f"{path}.code", f"topic {coding['code']!r} is not a concept of {label(system)}", name)
        else:
            self.use(system, f"{path}.code")

    def priority(self, action: dict[str, Any], path: str, name: str) -> None:
        priority = action.get("priority", "routine")
        if not isinstance(priority, str) or priority not in SEVERITY:
            self.report(f"{path}.priority", f"priority {priority!r} is not one of {', '.join(SEVERITY)}", name)

    def documentation(self, action: dict[str, Any], path: str, name: str) -> None:
        for k, document in enumerate(as_list(action.get("documentation"))):
            problems, monograph = self.monographs.citation_problems(document)
            for problem in problems:
                self.report(f"{path}.documentation[{k}]", problem, name)
            if monograph is not None:
                self.use(monograph, f"{path}.documentation[{k}]")

    def suggestion(self, action: dict[str, Any], path: str, scope: Scope, parent_name: str) -> None:
        kind = action_type(action)
        name = f"{parent_name} > suggestion {action.get('title', path)!r}"
        if kind not in ("update", "remove"):
            self.report(f"{path}.type", f"action type {kind!r} is not a suggestion the engine makes (update, remove)", name)
            return
        if any(isinstance(e, dict) and e.get("url") == EXT_VARIABLE for e in as_list(action.get("extension"))):
            self.report(f"{path}.extension", "variables of a suggestion are not evaluated: define them on its rule", name)
        self.conditions(action, path, scope, name)  # evaluated in the rule's scope
        for_each = [(k, e) for k, e in enumerate(as_list(action.get("extension"))) if isinstance(e, dict)
                    and str(e.get("url", "")).endswith("/for-each")]
        item_scope = scope
        for k, extension in for_each:
            element = f"{path}.extension[{k}].valueExpression"
            value = extension.get("valueExpression")
            if isinstance(value, dict) and self.language(value, element, name):
                self.expression(value.get("expression"), scope, f"{element}.expression", name)
            else:
                self.report(element, "for-each needs an expression", name)
            item_scope = scope.child(("target",))
        if not action.get("title"):
            self.report(f"{path}.title", "a suggestion needs a title: it is the label the clinician reads", name)
        self.text(action.get("title"), item_scope, f"{path}.title", name)
        paths = []
        for k, dynamic in enumerate(as_list(action.get("dynamicValue"))):
            element = f"{path}.dynamicValue[{k}]"
            if not isinstance(dynamic, dict) or not isinstance(dynamic.get("path"), str):
                self.report(element, "a dynamicValue needs a path and an expression", name)
                continue
            paths.append((dynamic["path"], f"{element}.path"))
            expression = dynamic.get("expression")
            if isinstance(expression, dict) and self.language(expression, f"{element}.expression", name):
                self.expression(expression.get("expression"), item_scope, f"{element}.expression.expression", name)
            else:
                self.report(f"{element}.expression", "a dynamicValue needs an expression", name)
        if kind == "remove":
            if "id" not in [p for p, _ in paths]:
                self.report(f"{path}.dynamicValue", "a remove suggestion needs a dynamicValue 'id': the order to delete", name)
            return
        definition = self.index.canonical(action.get("definitionCanonical"), "ActivityDefinition")
        if definition is None:
            self.report(f"{path}.definitionCanonical", f"ActivityDefinition {action.get('definitionCanonical')!r} "
                                                      "is not in the knowledge", name)
            return
        self.use(definition, f"{path}.definitionCanonical")
        if not isinstance(definition.get("dosage"), list) or not definition["dosage"]:
            self.report(f"{path}.definitionCanonical", f"{label(definition)} has no dosage to propose", name)
            return
        if not paths:
            self.report(f"{path}.dynamicValue", "an update suggestion needs the dose it proposes (a dynamicValue)", name)
        for dynamic_path, element in paths:
            problem = path_problem(definition, dynamic_path)
            if problem:
                self.report(element, f"{dynamic_path!r} {problem} (paths address the {DYNAMIC_VALUE_BASE} "
                                     f"{label(definition)})", name)

    # -- expressions -------------------------------------------------------------------------------

    def language(self, expression: dict[str, Any], element: str, name: str) -> bool:
        language = expression.get("language", FHIRPATH)
        if language != FHIRPATH:
            self.report(f"{element}.language", f"language {language!r}: the engine evaluates only {FHIRPATH}", name)
            return False
        return True

    def text(self, text: Any, scope: Scope, element: str, name: str) -> None:
        """A card text with `{{ FHIRPath }}` parts."""
        if text is None:
            return
        if not isinstance(text, str):
            self.report(element, "is not text", name)
            return
        expressions, rest = template_parts(text)
        if "{{" in rest or "}}" in rest:
            self.report(element, f"an unclosed {{{{ or }}}} in {text!r}", name)
        for part in expressions:
            self.expression(part, scope, element, name)

    def expression(self, text: Any, scope: Scope, element: str, name: str) -> ast.Node | None:
        if not isinstance(text, str) or not text.strip():
            self.report(element, "an empty expression", name)
            return None
        try:
            tree, problems, variables, record_reads, valuesets = analysis(text)
        except FHIRPathSyntaxError as error:
            self.report(element, f"{error.problem} at {error.where} in {text!r}", name)
            return None
        for problem in problems:
            self.report(element, f"{problem.message} at {describe_position(text, problem.offset)} in {text!r}", name)
        for variable in variables:
            if not scope.defines(variable.name):
                self.report(element, f"%{variable.name} is not defined here{self._hint(variable.name, scope)} "
                                     f"(at {describe_position(text, variable.start)} in {text!r})", name)
        for node in record_reads:
            fields = scope.record_fields(node.source.name)
            if fields is not None and node.name not in fields:
                self.report(element, f"%{node.source.name} has no field {node.name!r} (it has "
                                     f"{', '.join(fields)}) at {describe_position(text, node.start)} in {text!r}", name)
        for literal in valuesets:
            url = literal.value if "/" in str(literal.value) else f"{self.base}/ValueSet/{literal.value}"
            valueset = self.index.canonical(url, "ValueSet")
            if valueset is None:
                named = repr(url) if url == literal.value else f"{literal.value!r} ({url})"
                self.report(element, f"value set {named} is not in the knowledge "
                                     f"(at {describe_position(text, literal.start)} in {text!r})", name)
            else:
                self.use(valueset, element)
        return tree

    @staticmethod
    def _hint(name: str, scope: Scope) -> str:
        near = difflib.get_close_matches(name, sorted(scope.all_names()), n=1)
        return f" (did you mean %{near[0]}?)" if near else ""

