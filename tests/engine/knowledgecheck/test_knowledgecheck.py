"""The knowledge check reads the PlanDefinitions as the engine applies them: each finding names
the artifact, the element and the action. (tests/test_knowledge_mutations.py breaks the exported
bundle in 30+ ways through serve, cards, export and validate; these are the finer points.)"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from fhir_module.engine import Engine, KnowledgeBase
from fhir_module.engine.knowledgecheck import Finding, KnowledgeCheckError, check_knowledge, errors
from fhir_module.fhir.builtin import built_in_resources, module_resources

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
VARIABLE = "http://hl7.org/fhir/StructureDefinition/variable"


def _resources() -> list[dict[str, Any]]:
    return copy.deepcopy(list(module_resources("levomilnacipran")))


def _plans(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in resources if r["resourceType"] == "PlanDefinition"]


def _action(plan: dict[str, Any], action_id: str) -> dict[str, Any]:
    def find(actions: list[dict[str, Any]]) -> dict[str, Any] | None:
        for action in actions:
            if action.get("id") == action_id:
                return action
            found = find(action.get("action") or [])
            if found:
                return found
        return None

    found = find(plan["action"])
    assert found is not None, action_id
    return found


def _findings(edit: Callable[[list[dict[str, Any]]], None], **options: Any) -> list[Finding]:
    resources = _resources()
    edit(resources)
    return errors(check_knowledge(resources, **options))


def _condition(action: dict[str, Any]) -> dict[str, Any]:
    return action["condition"][0]["expression"]


@pytest.mark.parametrize("name", ["levomilnacipran-r4-collection.json", "levomilnacipran-r4-transaction.json",
                                  "levomilnacipran-r5-collection.json"])
def test_the_exported_bundles_pass(name: str) -> None:
    bundle = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    assert check_knowledge(e["resource"] for e in bundle["entry"]) == []


def test_the_built_in_knowledge_passes() -> None:
    assert check_knowledge(built_in_resources()) == []


def test_a_finding_names_artifact_element_and_action() -> None:
    def edit(resources: list[dict[str, Any]]) -> None:
        _condition(_action(_plans(resources)[0], "D1"))["expression"] = "%dose.mgPerDay >"

    [finding] = _findings(edit)
    assert finding.artifact == "PlanDefinition/levomilnacipran-order-select"
    assert finding.element == "action[0].action[0].action[0].condition[0].expression.expression"
    assert finding.action == "levomilnacipran-order > dose-limit > D1"
    assert str(finding).startswith("PlanDefinition/levomilnacipran-order-select.action[0].action[0].action[0]."
                                   "condition[0].expression.expression (action levomilnacipran-order > dose-limit > D1): "
                                   "unexpected end of expression at column 17")


def test_a_rules_variables_are_its_own() -> None:
    def edit(resources: list[dict[str, Any]]) -> None:  # D2 reads %limit, a variable of D1
        _condition(_action(_plans(resources)[0], "D2"))["expression"] = "%dose.startMgPerDay > %limit"

    [finding] = _findings(edit)
    assert "%limit is not defined here" in finding.message and finding.action.endswith("> D2")


def test_one_expression_written_in_two_scopes_is_judged_in_each() -> None:
    # The check reads each text once (plans.analysis); what it reads depends on where it is written.
    def edit(resources: list[dict[str, Any]]) -> None:  # %limit is D1's: defined there, not in D2
        plan = _plans(resources)[0]
        _condition(_action(plan, "D1"))["expression"] = "%dose.startMgPerDay > %limit"
        _condition(_action(plan, "D2"))["expression"] = "%dose.startMgPerDay > %limit"

    [finding] = _findings(edit)
    assert "%limit is not defined here" in finding.message and finding.action.endswith("> D2")


def test_the_analysis_of_a_text_is_what_its_tree_says() -> None:
    from fhir_module.engine.expressions import template_parts
    from fhir_module.engine.fhirpath import (FHIRPathSyntaxError, ast, call_problems, parse, presence_traps,
                                             valueset_arguments, variables_used)
    from fhir_module.engine.functions import FUNCTIONS
    from fhir_module.engine.knowledgecheck.plans import analysis

    def texts(value: Any) -> list[str]:
        if isinstance(value, dict):
            found = [value["expression"]] if isinstance(value.get("expression"), str) else []
            return found + [t for item in value.values() for t in texts(item)]
        if isinstance(value, list):
            return [t for item in value for t in texts(item)]
        return template_parts(value)[0] if isinstance(value, str) else []

    written = [t for plan in _plans(copy.deepcopy(list(built_in_resources()))) for t in texts(plan)]
    odd = ["%a.where(flag)", "foo(1)", "%x.y.z + %x.w", "conditions(1)", "aggregate($total + 1) + $total",
           "%lowest.max"]
    assert len(set(written)) > 200
    for text in dict.fromkeys([*written, *odd]):
        tree = parse(text)
        assert analysis(text) == (
            tree, (*call_problems(tree, FUNCTIONS), *presence_traps(tree)), tuple(variables_used(tree)),
            tuple(n for n in tree.walk() if isinstance(n, ast.Member) and isinstance(n.source, ast.Variable)),
            tuple(valueset_arguments(tree, FUNCTIONS))), text
    with pytest.raises(FHIRPathSyntaxError):
        analysis("%a.(")


def test_a_suggestion_is_evaluated_in_its_rules_scope_and_target_only_under_for_each() -> None:
    def rule_variable(resources: list[dict[str, Any]]) -> None:  # I1's remove suggestion reads I1's %recentMaoi
        suggestion = _action(_plans(resources)[0], "I1")["action"][0]
        suggestion["condition"] = [{"kind": "applicability", "expression": {
            "language": "text/fhirpath", "expression": "%recentMaoi.exists()"}}]

    assert _findings(rule_variable) == []

    def target_without_for_each(resources: list[dict[str, Any]]) -> None:
        _action(_plans(resources)[0], "I1")["action"][0]["title"] = "Remove {{%target.name}}"

    [finding] = _findings(target_without_for_each)
    assert "%target is not defined here" in finding.message and finding.element.endswith(".action[0].title")


def test_a_variable_that_needs_itself() -> None:
    def edit(resources: list[dict[str, Any]]) -> None:
        kind = _plans(resources)[0]["action"][0]
        kind["extension"] += [
            {"url": VARIABLE, "valueExpression": {"name": "a", "language": "text/fhirpath", "expression": "%b + 1"}},
            {"url": VARIABLE, "valueExpression": {"name": "b", "language": "text/fhirpath", "expression": "%a + 1"}},
        ]

    found = _findings(edit)
    assert sorted(f.message for f in found) == ["%a depends on itself", "%b depends on itself"]


def test_merged_texts_read_only_the_fields_lowest_and_causes_have() -> None:
    def edit(resources: list[dict[str, Any]]) -> None:
        group = _action(_plans(resources)[0], "dose-limit")
        for part in group["extension"][0]["extension"]:
            if part["url"] == "summary":
                part["valueString"] = "Above {{%lowest.max}} mg/day"

    [finding] = _findings(edit)
    assert "%lowest has no field 'max' (it has limit, reason)" in finding.message


def test_draft_serves_only_when_allowed_and_retired_never() -> None:
    def draft(resources: list[dict[str, Any]]) -> None:
        for resource in resources:
            if resource["resourceType"] in ("PlanDefinition", "ValueSet"):
                resource["status"] = "draft"

    found = _findings(draft)
    assert found and all("status is draft" in f.message for f in found)
    assert _findings(draft, allow_draft=True) == []
    resources = _resources()
    draft(resources)
    with pytest.raises(KnowledgeCheckError):
        KnowledgeBase(resources)
    assert Engine(KnowledgeBase(resources, allow_draft=True)).services()

    def retired(resources: list[dict[str, Any]]) -> None:
        _plans(resources)[1]["status"] = "retired"

    assert [f.message for f in _findings(retired, allow_draft=True)] == ["status is retired: retired knowledge never serves"]


def test_an_artifact_a_rule_uses_carries_the_same_status_rule() -> None:
    def edit(resources: list[dict[str, Any]]) -> None:
        next(r for r in resources if r["resourceType"] == "ValueSet" and r["id"].endswith("maoi"))["status"] = "retired"

    [finding] = _findings(edit)
    assert finding.artifact.startswith("ValueSet/") and finding.element == "status"
    assert "retired" in finding.message and "(used by PlanDefinition/" in finding.message


@pytest.mark.parametrize(("change", "message"), [
    ({"op": "generalizes"}, "filter op 'generalizes' is not evaluated here"),
    ({"op": "regex", "value": "I63.(["}, "filter regex 'I63.([' does not compile"),
    ({"op": "is-a", "property": "parent"}, "filter property 'parent' needs the code system's data"),
])
def test_value_set_filters_the_engine_cannot_evaluate(change: dict[str, str], message: str) -> None:
    def edit(resources: list[dict[str, Any]]) -> None:
        valueset = next(r for r in resources if r["resourceType"] == "ValueSet" and any(
            "filter" in include for include in r.get("compose", {}).get("include", [])))
        include = next(i for i in valueset["compose"]["include"] if "filter" in i)
        include["filter"][0].update(change)

    [finding] = _findings(edit)
    assert finding.artifact.startswith("ValueSet/") and ".filter[0]" in finding.element
    assert finding.message.startswith(message)


def test_the_manifest_lists_only_what_is_there() -> None:
    def edit(resources: list[dict[str, Any]]) -> None:
        resources.remove(next(r for r in resources if r["resourceType"] == "MedicationKnowledge"))

    [finding] = _findings(edit)
    assert finding.artifact.startswith("Library/") and "which is not in the knowledge" in finding.message


@pytest.mark.parametrize(("edit_rule", "message"), [
    (lambda rule: rule.update(priority="high"), "priority 'high' is not one of routine, urgent, asap, stat"),
    (lambda rule: rule.pop("code"), "has no topic code: a rule without a topic never makes a card"),
    (lambda rule: rule["condition"][0].update(kind="start"), "only applicability conditions are evaluated"),
    (lambda rule: rule["condition"][0]["expression"].update(language="text/cql"), "language 'text/cql'"),
    (lambda rule: rule["action"][0]["type"]["coding"][0].update(code="create"), "action type 'create' is not a suggestion"),
    (lambda rule: rule["action"][0].pop("title"), "a suggestion needs a title"),
])
def test_rule_shapes_the_engine_would_silently_skip(edit_rule: Callable[[dict[str, Any]], Any], message: str) -> None:
    found = _findings(lambda resources: edit_rule(_action(_plans(resources)[0], "R3")))
    assert any(f.message.startswith(message) for f in found), found
