"""The FHIRPath compiler agrees with fhirpathpy, the reference, on everything the knowledge asks.

- Every expression of every built-in module compiles natively (none falls back to fhirpathpy).
- Every scenario is run through the engine; each evaluation it makes is also made by fhirpathpy,
  on the same resource and variables, and the two values (or both failing) must be identical.
- Every expression is evaluated by both over generated resources and variables (hypothesis).
- An expression outside the compiled subset falls back to fhirpathpy, explicitly, and gives its answer.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_module.engine import Engine
from fhir_module.engine.chart import Chart
from fhir_module.engine.errors import RequestError
from fhir_module.engine.expressions import Expression, compiled, current_facts
from fhir_module.engine.facts import ChartFacts
from fhir_module.engine.failures import EvaluationFailure
from fhir_module.engine.fhirpath.compiler import Unsupported
from tests.support.scenarios import build_request, load_scenarios

REPO = Path(__file__).resolve().parents[3]
TODAY = date(2026, 11, 26)
_TEMPLATE_PART = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def _scenario_folders() -> list[Path]:
    """Folders holding scenario files: the test scenarios, and module case folders once they exist."""
    roots = [REPO / "tests" / "scenarios", REPO / "fhir_module" / "modules"]
    return sorted({path.parent for root in roots if root.is_dir() for path in root.rglob("*.json")
                   if "node_modules" not in path.parts and path.parent.name not in ("fixtures",)})


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.default()


def knowledge_expressions(engine: Engine) -> list[str]:
    """Every FHIRPath text the knowledge holds: conditions, variables, dynamic values, templates."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("expression"), str) and value.get("language", "text/fhirpath") == "text/fhirpath":
                found.add(value["expression"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and "{{" in value:
            found.update(part.strip() for part in _TEMPLATE_PART.findall(value))

    for resource in [*engine.kb.plan_definitions, *engine.kb.activity_definitions.values()]:
        walk(resource)
    return sorted(found)


def canonical(value: Any) -> Any:
    """A value with its Python types spelled out, so 1, 1.0, Decimal('1') and True all differ."""
    if isinstance(value, dict):
        return ("dict", tuple((k, canonical(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", tuple(canonical(v) for v in value))
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    return (type(value).__name__, value)


def outcome(evaluate, resource: Any, variables: dict[str, Any]) -> Any:
    try:
        return canonical(evaluate(resource, variables))
    except Exception:  # noqa: BLE001 - both must fail; how each says it may differ
        return "fails"


def test_every_knowledge_expression_compiles_natively(engine):
    expressions = knowledge_expressions(engine)
    assert len(expressions) > 100
    fallen_back = {text: compiled(text).not_compiled for text in expressions if not compiled(text).native}
    assert not fallen_back


def test_compiled_agrees_with_fhirpathpy_on_every_scenario(engine, monkeypatch):
    checked: list[tuple[str, Any, Any]] = []
    original = Expression.run

    def run_both(self: Expression, resource: Any, lookup: Callable[[str], Any]) -> list[Any]:
        # As the engine runs it: with the scope's lookup. (A variable that fails, fails here.)
        variables = {name: lookup(name) for name in self.variables}
        # Real charts never need the reference: the generated code alone must agree.
        mine = outcome(lambda resource, _: self._compiled(resource, lookup), resource, variables)
        checked.append((self.text, mine, outcome(self.reference, resource, variables)))
        return original(self, resource, lookup)

    monkeypatch.setattr(Expression, "run", run_both)
    discovery = {"services": engine.services()}
    scenarios = [s for folder in _scenario_folders() for s in load_scenarios(folder, TODAY)]
    assert len(scenarios) > 200
    for scenario in scenarios:
        # Every module's service of the hook, as an EHR calls them all.
        for service in (s for s in discovery["services"] if s["hook"] == scenario.hook):
            request = build_request(scenario, service, fhir_server=None, prefetch=True, today=TODAY)
            try:
                engine.evaluate(service["id"], request, today=TODAY)
            except RequestError:
                pass  # a request the engine refuses (the scenario says so); its evaluations still count
    differing = [(text, mine, reference) for text, mine, reference in checked if mine != reference]
    assert len(checked) > 10_000
    assert not differing, f"{len(differing)} of {len(checked)} evaluations differ; first: {differing[0]}"
    assert len({text for text, _, _ in checked}) > 100


# -- generated data ---------------------------------------------------------------------------

KEYS = ["evidence", "name", "current", "draft", "endedDaysAgo", "mgPerDay", "how", "text", "id", "date",
        "daysAgo", "value", "systolic", "diastolic", "mlMin", "short", "reason", "administrationsPerDay",
        "startMgPerDay", "coding", "display", "code", "system", "route", "dosageInstruction", "reasonCode",
        "reasonReference", "birthDate", "_birthDate", "extension", "limit", "replaced", "valueQuantity",
        "medicationCodeableConcept", "_text", "resourceType"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-200, 200),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["oral", "Oral route", "dose-limit", "name", "code", "2024-01-02", "", "Fetzima", "x"]),
    st.sampled_from(["Observation", "MedicationRequest", "Patient", "Condition"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
    max_leaves=12,
)
resources = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6).map(
    lambda r: {**r, "resourceType": r["resourceType"]} if isinstance(r.get("resourceType"), str) else r)


@pytest.fixture(scope="module")
def all_expressions(engine) -> list[str]:
    return knowledge_expressions(engine)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_compiled_agrees_with_fhirpathpy_on_generated_data(engine, all_expressions, data):
    text = data.draw(st.sampled_from(all_expressions), label="expression")
    expression = compiled(text)
    resource = data.draw(resources, label="resource")
    # A variable holds a collection, flat, as the engine's scopes always pass them.
    items = json_values.filter(lambda value: not isinstance(value, list))
    variables = {name: data.draw(st.lists(items, max_size=3), label=f"%{name}") for name in expression.variables}
    chart = Chart.from_request({"patientId": "p"}, {})
    facts = ChartFacts(engine.kb, chart, TODAY)
    facts.order = resource
    token = current_facts.set(facts)
    try:
        assert outcome(expression.value, resource, variables) == outcome(expression.reference, resource, variables)
    finally:
        current_facts.reset(token)


@pytest.mark.parametrize("text, resource, variables", [
    ("%x.name | %y.name", {}, {"x": [{"name": "n"}], "y": [{"name": "n"}]}),
    ("'n' | %x.name | %x.name", {}, {"x": [{"name": "n"}]}),  # fhirpathpy keeps navigated values apart in a mix
    ("%x.a = %y", {}, {"x": [{"a": 1}, {"a": 2}], "y": [1, 3]}),  # only first items compared
    ("iif(%x, 'yes', 'no')", {}, {"x": [1]}),
    ("%x.toString()", {}, {"x": [True]}),
    ("%x.v + 1", {}, {"x": [{"v": 0.1}]}),
    ("value", {"resourceType": "Observation", "valueQuantity": {"value": 2.5}}, {}),
    ("birthDate.exists() and %p.birthDate.empty()", {"_birthDate": {"extension": []}}, {"p": [{"_birthDate": {"extension": [{"url": "u"}]}}]}),
    ("%x.where(a).count()", {}, {"x": [{"a": False}, {"a": 0}, {}]}),
    ("%x.text", {}, {"x": [{"_text": [[0.0]]}]}),  # a navigated list value stays as the data has it
    ("%x.a", {}, {"x": [{"a": [[0.5], {"b": 0.25}]}]}),
    ("%x.v.aggregate(iif($total.empty() or $this > $total, $this, $total))", {}, {"x": [{"v": 1}, {"v": 2.5}, {"v": 3}]}),
    # fhirpathpy types a navigated object by its resourceType in '=': those evaluations are its own.
    ("%x.where(draft = true)", {}, {"x": [{"draft": {"resourceType": [], "name": None}}]}),
    ("%x.q = %x.q", {}, {"x": [{"q": {"resourceType": "Quantity", "value": 1, "code": "mg"}}]}),
    ("%x.q = %y", {}, {"x": [{"q": {"resourceType": "Quantity", "value": 1, "code": "mg"}}], "y": [True]}),
    # An array inside an array: fhirpathpy returns the navigated inner list as it is (found by
    # hypothesis, @firsthour and @failclosed); those evaluations are its own.
    ("%allergy.evidence", {}, {"allergy": [{"evidence": [[0.0]]}]}),
    ("%orderMatch.name", {}, {"orderMatch": [{"name": [[0.0]]}]}),
    ("%x.a | %y", {}, {"x": [{"a": [[1.5]]}], "y": [[2.5]]}),
    ("%x.a.select($this)", {}, {"x": [{"a": [[1.5], 2.5]}]}),
    ("%x.a.first().b", {}, {"x": [{"a": [{"b": [[1.5]]}]}]}),
    ("a", {"a": [[1.5]], "_a": [[{"extension": []}]]}, {}),
    # The generated source keeps $this, $index and $total as fhirpathpy's context holds them: set
    # by each operand, per-item argument and function argument, and still set after them.
    ("%x.where(a > 1).select(b).take(%n)", {"b": 9}, {"x": [{"a": 1, "b": 2}, {"a": 2.5, "b": 3}], "n": [1]}),
    ("%x.select(a.where($this > $index))", {}, {"x": [{"a": [0, 2, 1]}, {"a": [5]}]}),
    ("%x.aggregate(iif($this > $total, $this, $total), 2)", {}, {"x": [1, 2.5, 3]}),
    ("%x.take(2).join('; ')", {}, {"x": ["a", "b", "c"]}),  # literal arguments, checked once
    ("%x.select(b).take(n)", {"n": 0}, {"x": [{"b": 1, "n": 1}, {"b": 2, "n": 2}]}),  # n of the last item
    ("%x.where(b.where(c).exists() and d)", {}, {"x": [{"b": [{"c": True}], "d": True}]}),  # d of the x item
    ("%x.where(a).exists() and $this.b.exists()", {"b": 1}, {"x": [{"a": True, "b": 2}]}),
    ("%x.where(a).select($this.b) | $this.b", {"b": 1}, {"x": [{"a": True, "b": 2}]}),
    ("%x.a.join(%sep) + %x.first().s.lower()", {}, {"x": [{"a": "A", "s": "S"}, {"a": "b"}], "sep": [", "]}),
    ("%x.s.contains(%x.where(a).s)", {}, {"x": [{"a": True, "s": "bc"}]}),
    ("%x.exists(a = 2) and %x.all.empty()", {}, {"x": [{"a": 1}, {"a": 2}]}),
    ("(%x.a)[%i] - -2", {}, {"x": [{"a": [4, 5.5]}], "i": [1]}),  # (fhirpathpy negates a variable in place)
    ("iif(%x.a.count() > 1, %x.a.distinct(), %x.b.toString())", {}, {"x": [{"a": [1, 1.0]}, {"b": True}]}),
    ("%x.a != %y and (%x.b xor %y.empty()) implies %x.a.not()", {}, {"x": [{"a": True, "b": False}], "y": [False]}),
    ("%x.a.where($this < 3).first() + 'x'", {}, {"x": [{"a": ["y", 4]}]}),
    ("%x.a.length + %context.id.length", {"id": "abc"}, {"x": [{"a": "text"}]}),
])
def test_known_fhirpathpy_behaviours_are_kept(text, resource, variables):
    expression = Expression(text)
    assert expression.native, expression.not_compiled
    assert outcome(expression.value, resource, variables) == outcome(expression.reference, resource, variables)


@pytest.mark.parametrize("text, reason", [
    ("%patient.birthDate < @2000-01-01", "date literal"),
    ("%order.dosageInstruction.asNeeded", "choice element"),
    ("%x is Quantity", "'is Quantity'"),
    ("%x.ofType(Quantity)", "ofType"),
])
def test_outside_the_subset_falls_back_to_fhirpathpy_and_says_so(text, reason):
    expression = Expression(text)
    assert not expression.native
    assert reason in expression.not_compiled
    patient = {"resourceType": "Patient", "birthDate": "1990-02-03"}
    order = {"resourceType": "MedicationRequest", "dosageInstruction": [{"asNeededBoolean": True}]}
    variables = {"patient": [patient], "order": [order], "x": [{"value": 1, "unit": "mg"}]}
    assert expression.evaluate(order, variables) == expression.reference(order, variables)


def test_compiler_names_what_it_cannot_compile():
    from fhir_module.engine.fhirpath import parse
    from fhir_module.engine.fhirpath.compiler import Compiler

    with pytest.raises(Unsupported, match=r"the function ofType\(\)"):
        Compiler({}, {}).compile(parse("%x.ofType(Quantity)"))


def test_each_compiled_expression_is_named_by_its_text_in_profiles_and_tracebacks():
    """Every compiled expression was `<fhirpath evaluate>:1 evaluate`, one entry in a profile for all
    of them; each is now named by its FHIRPath, and an error inside one says which."""
    import cProfile
    import pstats
    import traceback

    texts = ["%order.status = 'active'", "%order.dosageInstruction.count() > 1"]
    expressions = [Expression(text) for text in texts]
    assert all(expression.native for expression in expressions)
    order = {"resourceType": "MedicationRequest", "status": "active", "dosageInstruction": [{}, {}]}
    profile = cProfile.Profile()
    profile.enable()
    for expression in expressions:
        assert expression.evaluate(order, {"order": [order]}) == [True]
    profile.disable()
    named = {filename for filename, _, _ in pstats.Stats(profile).stats if filename.startswith("<fhirpath ")}
    assert named == {f"<fhirpath {text}>" for text in texts}

    def lookup(name: str) -> Any:
        raise LookupError(name)

    with pytest.raises(EvaluationFailure) as raised:
        Expression("%order.status").run(order, lookup)
    assert isinstance(raised.value.__cause__, LookupError)
    assert "<fhirpath %order.status>" in "".join(traceback.format_tb(raised.value.__cause__.__traceback__))
