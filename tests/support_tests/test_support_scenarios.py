"""The scenario harness: loading, date placeholders, request building, prefetch answers, card comparison."""

from __future__ import annotations

import json
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from fhir_module.knowledge import builtin_module_dir
from tests.support.fhir_server import FhirServer
from tests.support.scenarios import (
    Scenario,
    ScenarioError,
    answer_query,
    birth_date_for_age,
    build_request,
    compare_cards,
    daily_dose_mg,
    load_scenario,
    load_scenarios,
    render_template,
    resolve_dates,
    service_for_hook,
)

PUBLIC = builtin_module_dir("levomilnacipran") / "cases" / "public"
TODAY = date(2026, 3, 1)

# A discovery entry shaped like the ones a CDS service publishes (the harness must not depend on ours).
SERVICE = {
    "hook": "order-select",
    "id": "sample-order-select",
    "prefetch": {
        "patient": "Patient/{{context.patientId}}",
        "medications": "MedicationRequest?patient={{context.patientId}}&status=active",
        "conditions": "Condition?patient={{context.patientId}}&clinical-status=active",
        "allergies": "AllergyIntolerance?patient={{context.patientId}}",
        "labs": "Observation?subject=Patient/{{context.patientId}}&date=ge{{today - 365 days}}&_sort=-date",
        "statements": "MedicationStatement?patient={{context.patientId}}",
    },
}


@pytest.fixture(scope="module")
def scenarios() -> dict[str, Scenario]:
    return {s.id: s for s in load_scenarios(PUBLIC, TODAY)}


# -- loading and dates --------------------------------------------------------------------------------


def test_public_scenarios_load_with_every_placeholder_resolved(scenarios: dict[str, Scenario]) -> None:
    assert len(scenarios) == len(list(PUBLIC.glob("*.json"))) >= 12
    for scenario in scenarios.values():
        text = json.dumps([scenario.record, scenario.draft_orders, scenario.expect])
        assert "${" not in text, scenario.id
        assert scenario.hook in ("order-select", "order-sign")
        assert any(r["resourceType"] == "Patient" and r["id"] == scenario.patient_id for r in scenario.record)


def test_dates_resolve_against_the_given_today(scenarios: dict[str, Scenario]) -> None:
    max_dose = scenarios["pub-max-dose"]
    patient = next(r for r in max_dose.record if r["resourceType"] == "Patient")
    assert patient["birthDate"] == "1981-03-01"  # ${age:45}
    current = next(r for r in max_dose.record if r["resourceType"] == "MedicationRequest")
    assert current["authoredOn"] == "2026-01-20"  # ${today-40d}
    assert max_dose.draft_orders[0]["authoredOn"] == "2026-03-01"  # ${today}


def test_placeholders_inside_strings_and_offsets() -> None:
    value = {"a": ["from ${today-10d} to ${today+2d}", 3], "b": "${age:67}", "c": "${today}"}
    assert resolve_dates(value, TODAY) == {
        "a": ["from 2026-02-19 to 2026-03-03", 3],
        "b": "1959-03-01",
        "c": "2026-03-01",
    }


def test_age_on_a_leap_day_birthday() -> None:
    assert birth_date_for_age(1, date(2028, 2, 29)) == date(2027, 2, 28)
    assert birth_date_for_age(4, date(2028, 2, 29)) == date(2024, 2, 29)


def test_unknown_placeholder_is_a_clear_error() -> None:
    with pytest.raises(ScenarioError, match=r"\$\{tomorrow\}"):
        resolve_dates({"x": "${tomorrow}"}, TODAY)


def _write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_bad_scenario_files_give_clear_errors(tmp_path: Path) -> None:
    good = json.loads((PUBLIC / "pub-max-dose.json").read_text())
    with pytest.raises(ScenarioError, match="not valid JSON"):
        load_scenario(_write(tmp_path, "broken.json", "{"), TODAY)
    with pytest.raises(ScenarioError, match="'hook'"):
        load_scenario(_write(tmp_path, "nohook.json", {k: v for k, v in good.items() if k != "hook"}), TODAY)
    with pytest.raises(ScenarioError, match="not one of"):
        load_scenario(_write(tmp_path, "badhook.json", {**good, "hook": "patient-view"}), TODAY)
    with pytest.raises(ScenarioError, match="has no id"):
        load_scenario(_write(tmp_path, "noid.json", {**good, "record": [{"resourceType": "Patient"}]}), TODAY)
    bad_expect = {**good, "expect": {"cards": [{"topic": "x", "indicator": "info", "suggestion": {"action": "create"}}]}}
    with pytest.raises(ScenarioError, match="update' or 'delete"):
        load_scenario(_write(tmp_path, "badexpect.json", bad_expect), TODAY)


def test_duplicate_ids_and_missing_folder(tmp_path: Path) -> None:
    good = json.loads((PUBLIC / "pub-clean.json").read_text())
    _write(tmp_path, "a.json", good)
    _write(tmp_path, "b.json", good)
    with pytest.raises(ScenarioError, match="duplicate"):
        load_scenarios(tmp_path, TODAY)
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenarios(tmp_path / "nope", TODAY)


# -- requests -----------------------------------------------------------------------------------------


def test_order_select_request(scenarios: dict[str, Scenario]) -> None:
    scenario = scenarios["pub-renal-moderate"]
    request = build_request(scenario, SERVICE, fhir_server="http://127.0.0.1:1/fhir", prefetch=True, today=TODAY)
    uuid.UUID(request["hookInstance"])
    assert request["hook"] == "order-select"
    assert request["fhirServer"] == "http://127.0.0.1:1/fhir"
    context = request["context"]
    assert context["userId"] == "Practitioner/example"
    assert context["patientId"] == "pub-renal-moderate"
    assert "encounterId" not in context
    assert context["selections"] == ["MedicationRequest/pub-renal-moderate-draft"]
    assert context["draftOrders"]["resourceType"] == "Bundle"
    assert context["draftOrders"]["type"] == "collection"
    assert [e["resource"]["id"] for e in context["draftOrders"]["entry"]] == ["pub-renal-moderate-draft"]

    prefetch = request["prefetch"]
    assert set(prefetch) == set(SERVICE["prefetch"])
    assert prefetch["patient"]["id"] == "pub-renal-moderate"
    assert [e["resource"]["resourceType"] for e in prefetch["medications"]["entry"]] == ["MedicationRequest"]
    assert prefetch["labs"]["total"] == 1 and prefetch["labs"]["entry"][0]["resource"]["resourceType"] == "Observation"
    assert prefetch["conditions"] == {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}
    # Draft orders are not on the EHR's server, so they never appear in prefetch.
    assert "pub-renal-moderate-draft" not in json.dumps(prefetch)


def test_order_sign_has_no_selections_and_prefetch_can_be_left_out(scenarios: dict[str, Scenario]) -> None:
    request = build_request(scenarios["pub-sign-esrd"], SERVICE, fhir_server=None, prefetch=False)
    assert request["hook"] == "order-sign"
    assert "selections" not in request["context"]
    assert "prefetch" not in request
    assert "fhirServer" not in request


def test_each_request_gets_a_new_hook_instance(scenarios: dict[str, Scenario]) -> None:
    scenario = scenarios["pub-clean"]
    first = build_request(scenario, SERVICE, fhir_server=None, prefetch=False)
    second = build_request(scenario, SERVICE, fhir_server=None, prefetch=False)
    assert first["hookInstance"] != second["hookInstance"]


def test_prefetch_filters_status_and_patient(scenarios: dict[str, Scenario]) -> None:
    record = [
        {"resourceType": "MedicationRequest", "id": "a", "status": "active", "subject": {"reference": "Patient/p"}},
        {"resourceType": "MedicationRequest", "id": "b", "status": "stopped", "subject": {"reference": "Patient/p"}},
        {"resourceType": "MedicationRequest", "id": "c", "status": "active", "subject": {"reference": "Patient/q"}},
    ]
    ids = lambda bundle: [e["resource"]["id"] for e in bundle["entry"]]  # noqa: E731
    assert ids(answer_query("MedicationRequest?patient=p&status=active", record)) == ["a"]
    assert ids(answer_query("MedicationRequest?subject=Patient/p&status=active,stopped", record)) == ["a", "b"]
    assert ids(answer_query("MedicationRequest?patient=p&_count=1&authoredon=ge2020-01-01", record)) == ["a", "b"]
    assert answer_query("Patient/nobody", record) is None


def test_template_tokens() -> None:
    context = {"patientId": "p1", "userId": "Practitioner/example"}
    rendered = render_template(
        "Observation?patient={{context.patientId}}&performer={{userPractitionerId}}&date=ge{{today-30d}}&x={{ today }}",
        context,
        TODAY,
    )
    assert rendered == "Observation?patient=p1&performer=example&date=ge2026-01-30&x=2026-03-01"
    with pytest.raises(ScenarioError, match="encounterId"):
        render_template("Encounter/{{context.encounterId}}", context, TODAY)
    with pytest.raises(ScenarioError, match="userPatientId"):
        render_template("Patient/{{userPatientId}}", context, TODAY)
    with pytest.raises(ScenarioError, match="unknown prefetch token"):
        render_template("Patient/{{nonsense}}", context, TODAY)


def test_bad_prefetch_query_is_a_clear_error() -> None:
    with pytest.raises(ScenarioError, match="resource type"):
        answer_query("?patient=1", [])


def test_service_for_hook() -> None:
    discovery = {"services": [SERVICE, {**SERVICE, "hook": "order-sign", "id": "sign"}]}
    assert service_for_hook(discovery, "order-sign")["id"] == "sign"
    with pytest.raises(ScenarioError, match="patient-view"):
        service_for_hook(discovery, "patient-view")


@pytest.mark.parametrize("scenario_id", sorted(p.stem for p in PUBLIC.glob("*.json")))
def test_prefetch_answers_include_what_a_real_fhir_server_returns(
    scenario_id: str, scenarios: dict[str, Scenario], fhir_server: FhirServer
) -> None:
    """The harness answers prefetch like a FHIR server (over-including is allowed, missing is not)."""
    scenario = scenarios[scenario_id]
    fhir_server.reset()
    fhir_server.load(scenario.record)
    request = build_request(scenario, SERVICE, fhir_server=fhir_server.base_url, prefetch=True, today=TODAY)
    context = request["context"]
    for key, template in SERVICE["prefetch"].items():
        query = render_template(template, context, TODAY)
        answer = request["prefetch"][key]
        if "?" not in query:
            from_server = {k: v for k, v in fhir_server.get(query).items() if k != "meta"}
            assert answer == from_server
            continue
        path, _, params = query.partition("?")
        server_ids = {e["resource"]["id"] for e in fhir_server.get(f"{path}?{params}").get("entry", [])}
        harness_ids = {e["resource"]["id"] for e in answer["entry"]}
        assert server_ids <= harness_ids, f"{key}: server {server_ids}, harness {harness_ids}"
    fhir_server.reset()


# -- cards --------------------------------------------------------------------------------------------


def _card(topic: str, indicator: str, *actions: dict[str, Any]) -> dict[str, Any]:
    card: dict[str, Any] = {"summary": f"{topic} card", "indicator": indicator, "source": {"label": "t", "topic": {"code": topic}}}
    if actions:
        card["suggestions"] = [{"label": "fix", "actions": list(actions)}]
    return card


def _update(rid: str, mg: float, frequency: int = 1, period: float = 1, unit: str = "d") -> dict[str, Any]:
    return {
        "type": "update",
        "description": "change dose",
        "resource": {
            "resourceType": "MedicationRequest",
            "id": rid,
            "dosageInstruction": [
                {
                    "timing": {"repeat": {"frequency": frequency, "period": period, "periodUnit": unit}},
                    "doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}],
                }
            ],
        },
    }


EXPECT_UPDATE = {
    "cards": [{"topic": "dose-limit", "indicator": "warning", "suggestion": {"action": "update", "resourceId": "MedicationRequest/d1", "dailyDoseMg": 120}}],
    "noOtherCards": True,
}


def test_matching_response_has_no_problems() -> None:
    assert compare_cards(EXPECT_UPDATE, {"cards": [_card("dose-limit", "warning", _update("d1", 60, frequency=2))]}) == []
    assert compare_cards({"cards": [], "noOtherCards": True}, {"cards": []}) == []


def test_wrong_dose_or_target_is_reported() -> None:
    problems = compare_cards(EXPECT_UPDATE, {"cards": [_card("dose-limit", "warning", _update("d1", 80))]})
    assert len(problems) == 1 and "update MedicationRequest/d1 to 120" in problems[0] and "80.0" in problems[0]
    problems = compare_cards(EXPECT_UPDATE, {"cards": [_card("dose-limit", "warning", _update("other", 120))]})
    assert len(problems) == 1 and "not found" in problems[0]


def test_missing_card_and_wrong_indicator_are_reported() -> None:
    problems = compare_cards(EXPECT_UPDATE, {"cards": [_card("dose-limit", "info", _update("d1", 120))]})
    assert problems[0].startswith("missing card dose-limit/warning")
    assert any("unexpected card dose-limit/info" in p for p in problems)
    assert compare_cards(EXPECT_UPDATE, {"cards": []}) == ["missing card dose-limit/warning (cards: none)"]


def test_delete_suggestion() -> None:
    expect = {"cards": [{"topic": "esrd", "indicator": "warning", "suggestion": {"action": "delete", "resourceId": "MedicationRequest/d1"}}]}
    delete = {"type": "delete", "description": "remove", "resourceId": "MedicationRequest/d1"}
    assert compare_cards(expect, {"cards": [_card("esrd", "warning", delete)]}) == []
    assert compare_cards(expect, {"cards": [_card("esrd", "warning", {**delete, "resourceId": ["MedicationRequest/d1"]})]}) == []
    assert len(compare_cards(expect, {"cards": [_card("esrd", "warning", {**delete, "resourceId": "MedicationRequest/x"})]})) == 1
    assert len(compare_cards(expect, {"cards": [_card("esrd", "warning")]})) == 1


def test_extra_cards_count_only_with_no_other_cards() -> None:
    expect = {"cards": [{"topic": "serotonergic", "indicator": "warning"}]}
    response = {"cards": [_card("serotonergic", "warning"), _card("bleeding-risk", "info")]}
    assert compare_cards(expect, response) == []
    problems = compare_cards({**expect, "noOtherCards": True}, response)
    assert problems == ["unexpected card bleeding-risk/info: 'bleeding-risk card'"]


def test_one_card_cannot_answer_two_expectations() -> None:
    expect = {"cards": [{"topic": "t", "indicator": "info"}, {"topic": "t", "indicator": "info"}]}
    assert len(compare_cards(expect, {"cards": [_card("t", "info")]})) == 1
    assert compare_cards(expect, {"cards": [_card("t", "info"), _card("t", "info")]}) == []


def test_malformed_response_is_a_problem_not_a_crash() -> None:
    assert compare_cards(EXPECT_UPDATE, {"oops": 1})[0].startswith("response has no 'cards' list")
    assert compare_cards(EXPECT_UPDATE, {"cards": ["not a card", {"indicator": "warning"}]})[0].startswith("missing card")


def test_daily_dose() -> None:
    assert daily_dose_mg(_update("x", 40, frequency=2)["resource"]) == 80
    assert daily_dose_mg(_update("x", 20, frequency=1, period=12, unit="h")["resource"]) == 40
    assert daily_dose_mg({"dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 0.1, "code": "g"}}]}]}) is None
    assert daily_dose_mg({"dosageInstruction": [{"text": "as directed"}]}) is None
    assert daily_dose_mg({}) is None
