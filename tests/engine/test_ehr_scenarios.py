"""Scenarios in the data shapes real EHRs send (the levomilnacipran module's cases/ehr), run through the real engine.

Epic, Oracle Health, athena and open-source EHRs do not send the tidy shapes of the public scenarios:
RxNorm codes sit among NDC and local codes, units come as free text, dates carry offsets, Medications
are known only by ingredient, bundles lack ``type``. Each of those files is sent the way
an EHR sends it (discovery → prefetch filled from the chart → request) to ``Engine.default()`` with
today's date, and ``compare_cards`` must find nothing.

Some request shapes cannot be written as a chart; a scenario names them in ``requestShape`` and
``_reshape`` below applies them to the built request (over HTTP the plain request runs):

- ``draft-bundle-no-type``: ``context.draftOrders`` without ``type``;
- ``draft-bundle-urn-uuid``: draft entries with ``urn:uuid`` fullUrls, references between drafts
  rewritten to those urns;
- ``foreign-resources-in-prefetch``: the chart's resources of other patients added to each prefetch
  Bundle of their type (an over-inclusive EHR query); the service must ignore them;
- ``prefetch-outcome-entry``: each prefetch searchset carries an OperationOutcome entry in search
  mode ``outcome``, as Epic sends;
- ``condition-status-as-text``: each prefetched Condition's clinicalStatus and verificationStatus keep
  only their text ("Active", "Resolved"): sent by some EHRs, invalid R4 (required binding), so the
  file holds the coded form and the FHIR server never sees the text-only one.

Every prefetch searchset also gets a ``self`` link, as every real FHIR server sends.

Known engine failures are listed in ``KNOWN_ENGINE_FAILURES``; they run as strict xfails, so a fix
shows up as an XPASS that asks for the entry to be removed.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from fhir_module.engine import Engine
from fhir_module.knowledge import builtin_module_dir
from tests.support.scenarios import validation_errors, Scenario, build_request, card_topic, compare_cards, load_scenarios, module_services

# scenario id → why the engine is wrong (what the rules say vs what the engine returns). Remove once fixed.
KNOWN_ENGINE_FAILURES: dict[str, str] = {
}

EHR_FOLDER = builtin_module_dir("levomilnacipran") / "cases" / "ehr"
TODAY = date.today()
SHAPES = (
    "draft-bundle-no-type",
    "draft-bundle-urn-uuid",
    "foreign-resources-in-prefetch",
    "prefetch-outcome-entry",
    "condition-status-as-text",
)
_URN_NAMESPACE = uuid.UUID("6f1c1c1e-3b7a-4c39-9a57-0e0c5f1f2a11")

_SCENARIOS: list[Scenario] = load_scenarios(EHR_FOLDER, today=TODAY)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.default()


@pytest.fixture(scope="module")
def services(engine: Engine) -> dict[str, dict[str, Any]]:
    return module_services(engine.services(), "levomilnacipran")


def _read_shapes() -> dict[str, list[str]]:
    """``requestShape`` of each scenario file (the harness keeps only the fields it knows)."""
    shapes: dict[str, list[str]] = {}
    for path in EHR_FOLDER.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        shapes[data["id"]] = list(data.get("requestShape") or [])
    return shapes


_raw_shapes = _read_shapes()


def _shapes(scenario: Scenario) -> list[str]:
    return _raw_shapes.get(scenario.id, [])


def _rewrite_references(value: Any, mapping: dict[str, str]) -> Any:
    """A copy of ``value`` with every ``reference`` found in ``mapping`` replaced."""
    if isinstance(value, list):
        return [_rewrite_references(item, mapping) for item in value]
    if isinstance(value, dict):
        out = {key: _rewrite_references(item, mapping) for key, item in value.items()}
        if isinstance(out.get("reference"), str) and out["reference"] in mapping:
            out["reference"] = mapping[out["reference"]]
        return out
    return value


def _patient_of(resource: dict[str, Any]) -> str | None:
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            return ref["reference"]
    return None


def _status_text(concept: dict[str, Any]) -> str:
    """The text an EHR shows for a status CodeableConcept ("active" → "Active")."""
    if isinstance(concept.get("text"), str):
        return concept["text"]
    codes = [c.get("code") for c in concept.get("coding") or [] if isinstance(c, dict) and c.get("code")]
    return codes[0].capitalize() if codes else ""


def _reshape(scenario: Scenario, request: dict[str, Any], service: dict[str, Any]) -> dict[str, Any]:
    """The request as a real EHR would shape it (see the module docstring)."""
    request = copy.deepcopy(request)
    shapes = _shapes(scenario)
    unknown = set(shapes) - set(SHAPES)
    assert not unknown, f"{scenario.id}: unknown requestShape {sorted(unknown)}"
    drafts = request["context"]["draftOrders"]
    if "draft-bundle-urn-uuid" in shapes:
        mapping = {
            f"{e['resource']['resourceType']}/{e['resource']['id']}": f"urn:uuid:{uuid.uuid5(_URN_NAMESPACE, e['resource']['id'])}"
            for e in drafts["entry"]
        }
        drafts["entry"] = [
            {
                "fullUrl": mapping[f"{e['resource']['resourceType']}/{e['resource']['id']}"],
                "resource": _rewrite_references(e["resource"], mapping),
            }
            for e in drafts["entry"]
        ]
    if "draft-bundle-no-type" in shapes:
        drafts.pop("type", None)
    foreign = [r for r in scenario.record if _patient_of(r) not in (None, f"Patient/{scenario.patient_id}")]
    templates = service.get("prefetch") or {}
    for key, bundle in (request.get("prefetch") or {}).items():
        if not isinstance(bundle, dict) or bundle.get("type") != "searchset":
            continue
        bundle["link"] = [{"relation": "self", "url": f"https://ehr.example.org/fhir/{templates[key]}"}]
        resource_type = templates[key].split("?", 1)[0]
        if "foreign-resources-in-prefetch" in shapes:
            extra = [copy.deepcopy(r) for r in foreign if r["resourceType"] == resource_type]
            bundle["entry"] = [*bundle.get("entry", []), *(
                {"fullUrl": f"https://ehr.example.org/fhir/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                for r in extra
            )]
            bundle["total"] = len(bundle["entry"])
        if "condition-status-as-text" in shapes:
            for entry in bundle.get("entry", []):
                resource = entry.get("resource") or {}
                if resource.get("resourceType") == "Condition":
                    for element in ("clinicalStatus", "verificationStatus"):
                        if isinstance(resource.get(element), dict):
                            resource[element] = {"text": _status_text(resource[element])}
        if "prefetch-outcome-entry" in shapes:
            bundle.setdefault("entry", []).append({
                "fullUrl": "urn:uuid:0b8a3a3e-3f0a-4a53-9d7e-2f3f0f5b8c01",
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "information", "code": "informational",
                               "details": {"text": "Some results may be restricted by the user's security settings."}}],
                },
                "search": {"mode": "outcome"},
            })
    return request


def _params() -> list[Any]:
    params = []
    for scenario in _SCENARIOS:
        reason = KNOWN_ENGINE_FAILURES.get(scenario.id)
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        params.append(pytest.param(scenario, id=scenario.id, marks=marks))
    return params


def _describe(cards: list[dict[str, Any]]) -> str:
    return "; ".join(f"{card_topic(c)}/{c.get('indicator')}: {c.get('summary')!r}" for c in cards) or "no cards"


def test_there_are_enough_ehr_scenarios_with_prefixed_ids() -> None:
    assert len(_SCENARIOS) >= 40
    assert all(s.id.startswith("ehr-") and s.source is not None and s.source.stem == s.id for s in _SCENARIOS)


def test_known_failures_name_real_scenarios() -> None:
    ids = {s.id for s in _SCENARIOS}
    assert set(KNOWN_ENGINE_FAILURES) <= ids, sorted(set(KNOWN_ENGINE_FAILURES) - ids)


def test_request_shapes_are_known() -> None:
    for scenario_id, shapes in _raw_shapes.items():
        assert set(shapes) <= set(SHAPES), f"{scenario_id}: {shapes}"


@pytest.mark.parametrize("scenario", [pytest.param(s, id=s.id) for s in _SCENARIOS])
def test_scenario_resources_are_valid_fhir(scenario: Scenario) -> None:
    """An EHR could send it: every chart and draft resource is valid R4."""
    errors = validation_errors(scenario)
    assert not errors, errors


@pytest.mark.parametrize("scenario", _params())
def test_ehr_scenario_cards(scenario: Scenario, engine: Engine, services: dict[str, dict[str, Any]]) -> None:
    service = services[scenario.hook]
    request = build_request(scenario, service, fhir_server=None, prefetch=True, today=TODAY)
    response = engine.evaluate(service["id"], _reshape(scenario, request, service), today=TODAY)
    problems = compare_cards(scenario.expect, response)
    assert not problems, f"{scenario.id} ({scenario.description}): {problems}; got {_describe(response['cards'])}"


# -- the reshaping must really happen, or a shaped scenario proves nothing ----------------------------


def _shaped(scenario_id: str, services: dict[str, dict[str, Any]]) -> tuple[Scenario, dict[str, Any]]:
    scenario = next(s for s in _SCENARIOS if s.id == scenario_id)
    service = services[scenario.hook]
    request = build_request(scenario, service, fhir_server=None, prefetch=True, today=TODAY)
    return scenario, _reshape(scenario, request, service)


def test_every_shape_is_used_by_a_scenario() -> None:
    assert {shape for shapes in _raw_shapes.values() for shape in shapes} == set(SHAPES)


def test_urn_uuid_drafts_reference_each_other_by_full_url(services: dict[str, dict[str, Any]]) -> None:
    _, request = _shaped("ehr-draft-bundle-urn-uuid", services)
    bundle = request["context"]["draftOrders"]
    assert "type" not in bundle
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    assert all(url.startswith("urn:uuid:") for url in full_urls)
    orders = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationRequest"]
    assert orders and all(o["medicationReference"]["reference"] in full_urls for o in orders)


def test_foreign_resources_reach_the_prefetch(services: dict[str, dict[str, Any]]) -> None:
    scenario, request = _shaped("ehr-other-patient-resources-ignored", services)
    mine = f"Patient/{scenario.patient_id}"
    foreign = {
        e["resource"]["resourceType"]
        for bundle in request["prefetch"].values()
        if isinstance(bundle, dict) and bundle.get("resourceType") == "Bundle"
        for e in bundle.get("entry", [])
        if _patient_of(e["resource"]) not in (None, mine)
    }
    assert {"MedicationRequest", "MedicationStatement", "Condition", "AllergyIntolerance", "Observation"} <= foreign


def test_condition_status_reaches_the_engine_as_text(services: dict[str, dict[str, Any]]) -> None:
    _, request = _shaped("ehr-condition-status-text-only-resolved", services)
    conditions = [e["resource"] for e in request["prefetch"]["conditions"]["entry"]]
    assert [c["clinicalStatus"] for c in conditions] == [{"text": "Resolved"}]


def test_prefetch_searchsets_carry_links_and_outcomes(services: dict[str, dict[str, Any]]) -> None:
    _, request = _shaped("ehr-prefetch-paged-search", services)
    searchsets = [b for b in request["prefetch"].values() if isinstance(b, dict) and b.get("type") == "searchset"]
    assert searchsets and all(b["link"][0]["relation"] == "self" for b in searchsets)
    assert all(b["entry"][-1]["search"]["mode"] == "outcome" for b in searchsets)
