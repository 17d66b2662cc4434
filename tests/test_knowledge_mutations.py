"""Knowledge that cannot run is refused, whoever reads it (issue 7's "done when").

The exported bundle is broken in 46 ways (syntax, unknown functions, arity, undefined variables,
missing ValueSets, ActivityDefinitions, CodeSystems and monographs, status, merged-topic
variables, dynamicValue paths, quotes the monograph does not hold, ...). Each broken bundle is
refused by `serve`, `cards` and `export` (exit status 1) and reported by `validate` (an error of
the "knowledge" layer), each time with a message that names the artifact and the element; the
untouched bundle passes all four. The commands run in process (serve refuses before it listens);
a few run as real subprocesses too.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_module.cli import main
from fhir_module.engine.knowledgecheck import EXIT_REFUSED
from fhir_module.knowledge import builtin_module_dirs

REQUEST = Path(__file__).resolve().parents[1] / "examples" / "requests" / "order-select-renal-moderate.json"
VARIABLE = "http://hl7.org/fhir/StructureDefinition/variable"

Bundle = dict[str, Any]


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


# The breakages name levomilnacipran's rules and artifacts: the module's bundle alone is broken.
MODULE = next(folder for folder in builtin_module_dirs() if folder.name == "levomilnacipran")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    path = tmp_path_factory.mktemp("export") / "knowledge.json"
    status, _, err = _run("export", "--module", str(MODULE), "-o", str(path))
    assert status == 0, err
    return json.loads(path.read_text(encoding="utf-8"))


# -- finding things in the bundle -----------------------------------------------------------------


def _entry(bundle: Bundle, resource_type: str, id_suffix: str = "") -> tuple[int, dict[str, Any]]:
    return next((i, e["resource"]) for i, e in enumerate(bundle["entry"])
                if e["resource"]["resourceType"] == resource_type and e["resource"]["id"].endswith(id_suffix))


def _label(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def _plan(bundle: Bundle) -> dict[str, Any]:
    return _entry(bundle, "PlanDefinition", "order-select")[1]


def _action(plan: dict[str, Any], action_id: str) -> tuple[dict[str, Any], str]:
    """The action with this id, and its place (`action[0].action[2]`)."""
    stack = [(action, f"action[{i}]") for i, action in enumerate(plan["action"])]
    while stack:
        action, path = stack.pop()
        if action.get("id") == action_id:
            return action, path
        stack += [(child, f"{path}.action[{i}]") for i, child in enumerate(action.get("action") or [])]
    raise AssertionError(action_id)


def _variable(action: dict[str, Any], name: str) -> tuple[dict[str, Any], int]:
    return next((e["valueExpression"], i) for i, e in enumerate(action["extension"])
                if e.get("url") == VARIABLE and e["valueExpression"].get("name") == name)


def _template(action: dict[str, Any]) -> tuple[dict[str, Any], int]:
    return next((e, i) for i, e in enumerate(action["extension"]) if e["url"].endswith("/card-template"))


def _suggestion(action: dict[str, Any]) -> tuple[dict[str, Any], int]:
    return next((c, i) for i, c in enumerate(action["action"]) if c.get("type"))


# -- the breakages: each edits the bundle and says where the finding must point ---------------------

Where = tuple[str, str]  # (artifact "Type/id", element inside it)


def _condition(rule: str, expression: str) -> Callable[[Bundle], Where]:
    def edit(bundle: Bundle) -> Where:
        plan = _plan(bundle)
        action, path = _action(plan, rule)
        action["condition"][0]["expression"]["expression"] = expression
        return _label(plan), f"{path}.condition[0].expression.expression"
    return edit


def _rule_variable(rule: str, name: str, expression: str) -> Callable[[Bundle], Where]:
    def edit(bundle: Bundle) -> Where:
        plan = _plan(bundle)
        action, path = _action(plan, rule)
        variable, index = _variable(action, name)
        variable["expression"] = expression
        return _label(plan), f"{path}.extension[{index}].valueExpression.expression"
    return edit


def _rule_variable_edit(rule: str, name: str, old: str, new: str) -> Callable[[Bundle], Where]:
    def edit(bundle: Bundle) -> Where:
        plan = _plan(bundle)
        action, path = _action(plan, rule)
        variable, index = _variable(action, name)
        assert old in variable["expression"]
        variable["expression"] = variable["expression"].replace(old, new)
        return _label(plan), f"{path}.extension[{index}].valueExpression.expression"
    return edit


def _removed(resource_type: str, id_suffix: str, then: Callable[[Bundle], Where]) -> Callable[[Bundle], Where]:
    def edit(bundle: Bundle) -> Where:
        index, _ = _entry(bundle, resource_type, id_suffix)
        del bundle["entry"][index]
        return then(bundle)
    return edit


def _status(resource_type: str, id_suffix: str, status: str) -> Callable[[Bundle], Where]:
    def edit(bundle: Bundle) -> Where:
        _, resource = _entry(bundle, resource_type, id_suffix)
        resource["status"] = status
        return _label(resource), "status"
    return edit


def _kind_variable_named(name: str) -> Callable[[Bundle], Where]:
    def where(bundle: Bundle) -> Where:
        plan = _plan(bundle)
        _, index = _variable(plan["action"][0], name)
        return _label(plan), f"action[0].extension[{index}].valueExpression.expression"
    return where


def _first_suggestion_of(rule: str, element: str) -> Callable[[Bundle], Where]:
    def where(bundle: Bundle) -> Where:
        plan = _plan(bundle)
        action, path = _action(plan, rule)
        _, index = _suggestion(action)
        return _label(plan), f"{path}.action[{index}].{element}"
    return where


def _element_of(rule: str, element: str) -> Callable[[Bundle], Where]:
    """Where a rule's own element (its topic `code`, its `documentation[0]`) is."""
    def where(bundle: Bundle) -> Where:
        plan = _plan(bundle)
        _, path = _action(plan, rule)
        return _label(plan), f"{path}.{element}"
    return where


def _library_lists(id_suffix_type: str) -> Callable[[Bundle], Where]:
    def where(bundle: Bundle) -> Where:
        _, library = _entry(bundle, "Library")
        index = next(i for i, a in enumerate(library["relatedArtifact"]) if id_suffix_type in a.get("resource", ""))
        return _label(library), f"relatedArtifact[{index}].resource"
    return where


def _override_reasons(bundle: Bundle) -> Where:
    plan = _plan(bundle)
    index = next(i for i, a in enumerate(plan["relatedArtifact"]) if a.get("label") == "override-reasons")
    return _label(plan), f"relatedArtifact[{index}].resource"


def _merge_variable_renamed(bundle: Bundle) -> Where:  # D1 names its limit `max`: the merged card reads `limit`
    plan = _plan(bundle)
    action, path = _action(plan, "D1")
    _variable(action, "limit")[0]["name"] = "max"
    return _label(plan), f"{path}.extension"


def _lowest_field(bundle: Bundle) -> Where:
    plan = _plan(bundle)
    action, path = _action(plan, "dose-limit")
    template, index = _template(action)
    summary = next(part for part in template["extension"] if part["url"] == "summary")
    summary["valueString"] = summary["valueString"].replace("%lowest.limit", "%lowest.max")
    return _label(plan), f"{path}.extension[{index}].extension('summary')"


def _dynamic_value(rule: str, path_text: str) -> Callable[[Bundle], Where]:
    def edit(bundle: Bundle) -> Where:
        plan = _plan(bundle)
        action, path = _action(plan, rule)
        suggestion, index = _suggestion(action)
        suggestion["dynamicValue"][0]["path"] = path_text
        return _label(plan), f"{path}.action[{index}].dynamicValue[0].path"
    return edit


def _remove_without_id(bundle: Bundle) -> Where:
    plan = _plan(bundle)
    action, path = _action(plan, "R3")
    suggestion, index = _suggestion(action)
    suggestion["dynamicValue"][0]["path"] = "identifier"
    return _label(plan), f"{path}.action[{index}].dynamicValue"


def _canonical_typo(bundle: Bundle) -> Where:
    plan = _plan(bundle)
    action, path = _action(plan, "dose-limit")
    suggestion, index = _suggestion(action)
    suggestion["definitionCanonical"] += "-typo"
    return _label(plan), f"{path}.action[{index}].definitionCanonical"


def _valueset_argument_typo(bundle: Bundle) -> Where:
    plan = _plan(bundle)
    variable, index = _variable(plan["action"][0], "maoiTherapies")
    variable["expression"] = variable["expression"].replace("maoi", "maio")
    return _label(plan), f"action[0].extension[{index}].valueExpression.expression"


def _unsupported_quote(bundle: Bundle) -> Where:
    plan = _plan(bundle)
    action, path = _action(plan, "I3")
    action["documentation"][0]["citation"] = "Levomilnacipran is safe with every serotonergic drug."
    return _label(plan), f"{path}.documentation[0]"


def _quote_not_in_citation(bundle: Bundle) -> Where:
    plan = _plan(bundle)
    action, path = _action(plan, "K1")
    action["documentation"][0]["extension"][0]["valueString"] = "The usual starting dose is 20 mg once daily"
    return _label(plan), f"{path}.documentation[0]"


def _valueset_filter(change: dict[str, str]) -> Callable[[Bundle], Where]:
    def edit(bundle: Bundle) -> Where:
        _, valueset = next((i, e["resource"]) for i, e in enumerate(bundle["entry"])
                           if e["resource"]["resourceType"] == "ValueSet"
                           and any("filter" in include for include in e["resource"].get("compose", {}).get("include", [])))
        index = next(i for i, include in enumerate(valueset["compose"]["include"]) if "filter" in include)
        valueset["compose"]["include"][index]["filter"][0].update(change)
        return _label(valueset), f"compose.include[{index}].filter[0]"
    return edit


def _rule_edit(rule: str, element: str, change: Callable[[dict[str, Any]], Any]) -> Callable[[Bundle], Where]:
    def edit(bundle: Bundle) -> Where:
        plan = _plan(bundle)
        action, path = _action(plan, rule)
        change(action)
        return _label(plan), f"{path}.{element}" if element else path
    return edit


def _no_summary(bundle: Bundle) -> Where:
    plan = _plan(bundle)
    action, path = _action(plan, "K4")
    template, index = _template(action)
    template["extension"] = [part for part in template["extension"] if part["url"] != "summary"]
    return _label(plan), f"{path}.extension[{index}]"


def _template_part(bundle: Bundle) -> Where:
    plan = _plan(bundle)
    action, path = _action(plan, "K4")
    template, index = _template(action)
    detail = next(part for part in template["extension"] if part["url"] == "detail")
    detail["valueString"] = "Stroke: {{%stroke.evidence.}}."
    return _label(plan), f"{path}.extension[{index}].extension('detail')"


def _cycle(bundle: Bundle) -> Where:
    plan = _plan(bundle)
    kind = plan["action"][0]
    kind["extension"] += [
        {"url": VARIABLE, "valueExpression": {"name": "a", "language": "text/fhirpath", "expression": "%b"}},
        {"url": VARIABLE, "valueExpression": {"name": "b", "language": "text/fhirpath", "expression": "%a"}},
    ]
    return _label(plan), f"action[0].extension[{len(kind['extension']) - 2}].valueExpression.expression"


def _undeclared_input(bundle: Bundle) -> Where:
    plan = _plan(bundle)
    plan["action"][0]["input"] = [r for r in plan["action"][0]["input"] if r["type"] != "Observation"]
    return _label(plan), "action[0].input"


def _note_without_when(bundle: Bundle) -> Where:
    plan = _plan(bundle)
    action, path = _action(plan, "K2")
    index = next(i for i, e in enumerate(action["extension"]) if e["url"].endswith("/card-note"))
    action["extension"][index]["extension"] = [p for p in action["extension"][index]["extension"] if p["url"] != "when"]
    return _label(plan), f"{path}.extension[{index}]"


@dataclass(frozen=True)
class Mutation:
    name: str
    edit: Callable[[Bundle], Where]


MUTATIONS = [
    Mutation("syntax error", _condition("D1", "this is (not fhirpath")),
    Mutation("cut expression", _condition("D1", "%orderMatch.exists(")),
    Mutation("trailing input", _condition("D1", "%dose.mgPerDay > %limit %limit")),
    Mutation("unknown function", _condition("D1", "%dose.mgPerDay.exist()")),
    Mutation("wrong arity (FHIRPath)", _condition("D1", "%dose.mgPerDay.exists(1, 2)")),
    Mutation("wrong arity (module function)", _rule_variable("I3", "serotonergic", "therapies()")),
    Mutation("wrong argument kind", _rule_variable("K2", "heartRate", "latestObservation('heart-rate', 'thirty')")),
    Mutation("undefined variable", _condition("D1", "%dose.mgPerDay > %limt")),
    Mutation("filter that keeps false items", _rule_variable_edit("I3", "serotonergic", "where(current or draft)", "where(current)")),
    Mutation("another rule's variable", _condition("D2", "%dose.startMgPerDay > %limit")),
    Mutation("variable that needs itself", _cycle),
    Mutation("empty expression", _condition("K4", "")),
    Mutation("unclosed template part", _template_part),
    Mutation("missing ValueSet", _removed("ValueSet", "creatinine-clearance", _kind_variable_named("renal"))),
    Mutation("missing ValueSet, listed by the manifest", _removed("ValueSet", "-lactation", _library_lists("lactation"))),
    Mutation("value set named wrong", _valueset_argument_typo),
    Mutation("missing ActivityDefinition", _removed("ActivityDefinition", "-dose",
                                                    _first_suggestion_of("dose-limit", "definitionCanonical"))),
    Mutation("ActivityDefinition named wrong", _canonical_typo),
    Mutation("missing topic CodeSystem", _removed("CodeSystem", "rule-topic", _element_of("D2", "code"))),
    Mutation("topic not in its CodeSystem", _rule_edit("D2", "code", lambda a: a["code"][0]["coding"][0].update(code="start"))),
    Mutation("missing override-reason CodeSystem", _removed("CodeSystem", "override-reason", _override_reasons)),
    Mutation("missing monograph", _removed("DocumentReference", "monograph", _element_of("D1", "documentation[0]"))),
    Mutation("retired PlanDefinition", _status("PlanDefinition", "order-select", "retired")),
    Mutation("draft PlanDefinition", _status("PlanDefinition", "order-select", "draft")),
    Mutation("unknown status", _status("PlanDefinition", "order-select", "unknown")),
    Mutation("retired ValueSet", _status("ValueSet", "-maoi", "retired")),
    Mutation("retired ActivityDefinition", _status("ActivityDefinition", "-titration", "retired")),
    Mutation("retired CodeSystem", _status("CodeSystem", "rule-topic", "retired")),
    Mutation("wrong merged-topic variable", _merge_variable_renamed),
    Mutation("merged text reads a field %lowest lacks", _lowest_field),
    Mutation("wrong dynamicValue path", _dynamic_value("dose-limit", "dosageInstruction[0].doseAndRate[0].doseQuantity.valu")),
    Mutation("dynamicValue path to a phase that is not there", _dynamic_value("dose-limit", "dosageInstruction[3].doseAndRate[0].doseQuantity.value")),
    Mutation("dynamicValue path to a code", _dynamic_value("dose-limit", "dosageInstruction[0].timing.repeat.periodUnit")),
    Mutation("remove suggestion without the id", _remove_without_id),
    Mutation("unsupported quote", _unsupported_quote),
    Mutation("quote not in its cited sentence", _quote_not_in_citation),
    Mutation("value-set filter op not evaluated", _valueset_filter({"op": "generalizes"})),
    Mutation("value-set regex that does not compile", _valueset_filter({"op": "regex", "value": "I6(["})),
    Mutation("rule without a topic", _rule_edit("P4", "code", lambda a: a.pop("code"))),
    Mutation("rule without a summary", _no_summary),
    Mutation("unknown priority", _rule_edit("P4", "priority", lambda a: a.update(priority="high"))),
    Mutation("condition that is not applicability", _rule_edit("P4", "condition[0].kind", lambda a: a["condition"][0].update(kind="start"))),
    Mutation("expression language not FHIRPath", _rule_edit("P4", "condition[0].expression.language",
                                                            lambda a: a["condition"][0]["expression"].update(language="text/cql"))),
    Mutation("suggestion of an unknown type", _rule_edit("K4", "action[0].type",
                                                         lambda a: a["action"][0]["type"]["coding"][0].update(code="create"))),
    Mutation("data note without its condition", _note_without_when),
    Mutation("rules read data the input does not ask for", _undeclared_input),
]


def test_thirty_kinds_of_breakage_at_least() -> None:
    assert len(MUTATIONS) >= 30
    assert len({m.name for m in MUTATIONS}) == len(MUTATIONS)


@pytest.fixture(scope="module")
def untouched(exported: Bundle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("untouched") / "knowledge.json"
    path.write_text(json.dumps(exported), encoding="utf-8")
    return path


def test_the_untouched_bundle_passes_all_four(untouched: Path, tmp_path: Path) -> None:
    status, out, err = _run("cards", str(REQUEST), "--bundle", str(untouched), "--today", "2026-11-26")
    assert status == 0 and json.loads(out)["cards"], err
    written = tmp_path / "again.json"
    assert _run("export", "--bundle", str(untouched), "-o", str(written))[0] == 0
    again, before = (json.loads(path.read_text(encoding="utf-8")) for path in (written, untouched))
    # The same resources; a re-export sorts all by type and id, a build of several modules module by module.
    assert {e["fullUrl"]: e for e in again.pop("entry")} == {e["fullUrl"]: e for e in before.pop("entry")}
    assert again == before
    status, out, _ = _run("validate", str(untouched))
    assert status == 0, out
    _serves(untouched, tmp_path)  # a real process, self-tested on the modules' own cases


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_each_breakage_is_refused_by_serve_cards_export_and_validate(
        mutation: Mutation, exported: Bundle, tmp_path: Path) -> None:
    bundle = copy.deepcopy(exported)
    artifact, element = mutation.edit(bundle)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    named = f"{artifact}.{element}"

    status, out, err = _run("serve", "--port", "1", "--bundle", str(path))  # refused before it listens
    assert status == EXIT_REFUSED and "refusing to serve: the knowledge failed its check" in err, err
    assert named in err, err

    status, out, err = _run("cards", str(REQUEST), "--bundle", str(path))
    assert (status, out) == (EXIT_REFUSED, "") and named in err, err

    written = tmp_path / "out.json"
    status, _, err = _run("export", "--bundle", str(path), "-o", str(written))
    assert status == EXIT_REFUSED and not written.exists() and named in err, err

    status, out, _ = _run("validate", str(path), "--format", "json")
    assert status == 1
    index = next(i for i, e in enumerate(bundle["entry"]) if _label(e["resource"]) == artifact)
    location = f"Bundle.entry[{index}].resource.{element}"
    assert any(issue["severity"] == "error" and issue["diagnostics"].startswith(f"[knowledge] {artifact}")
               and issue.get("expression") == [location] for issue in json.loads(out)["issue"]), out


# -- a few as real processes ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, FHIR_MODULE_DATABASE_URL=f"sqlite:///{tmp_path / 'fb.sqlite3'}")
    env.pop("FHIR_MODULE_TRUSTED_CLIENTS", None)
    return env


def _serves(bundle: Path, tmp_path: Path) -> None:
    port = _free_port()
    cases = ["--cases", str(MODULE / "cases")]
    process = subprocess.Popen([sys.executable, "-m", "fhir_module.cli", "serve", "--port", str(port),
                                "--bundle", str(bundle), *cases], env=_env(tmp_path),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return
            assert process.poll() is None, process.communicate()
            time.sleep(0.2)
        raise AssertionError("serve did not become healthy")
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.parametrize("name", ["cut expression", "missing ValueSet", "retired PlanDefinition"])
def test_a_real_serve_process_refuses(name: str, exported: Bundle, tmp_path: Path) -> None:
    mutation = next(m for m in MUTATIONS if m.name == name)
    bundle = copy.deepcopy(exported)
    artifact, element = mutation.edit(bundle)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "fhir_module.cli", "serve", "--port", str(_free_port()),
                             "--bundle", str(path)], env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == EXIT_REFUSED == 1
    assert f"{artifact}.{element}" in result.stderr and "Traceback" not in result.stderr
