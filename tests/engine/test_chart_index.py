"""The chart is indexed once per request: what each rule reads is worked out once and shared,
and the indexes give exactly what a scan of the whole chart would."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_module.engine import Engine
from fhir_module.engine.chart import Chart
from fhir_module.engine.clinical.observations import condition_counts
from fhir_module.engine.facts import ChartFacts
from fhir_module.engine.knowledgebase import concept_key

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
TODAY = date(2026, 11, 26)
_ENGINE = Engine.default()


def _bundle(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def _observation(rid: str, code: str, *, components: tuple[str, ...] = (), patient: str = "p1") -> dict:
    observation = {"resourceType": "Observation", "id": rid, "status": "final", "subject": {"reference": f"Patient/{patient}"},
                   "code": {"coding": [{"system": LOINC, "code": code}]}, "effectiveDateTime": "2026-11-20"}
    if components:
        observation["component"] = [{"code": {"coding": [{"system": LOINC, "code": c}]}, "valueQuantity": {"value": 1}}
                                    for c in components]
    return observation


def _chart(*resources: dict, drafts: tuple[dict, ...] = ()) -> Chart:
    return Chart.from_request({"patientId": "p1", "draftOrders": _bundle(*drafts)}, {"all": _bundle(*resources)})


def test_observations_by_code_include_component_codes_in_chart_order_and_only_the_patients() -> None:
    chart = _chart(
        _observation("hr", "8867-4"),
        _observation("panel", "85354-9", components=("8480-6", "8462-4")),
        _observation("systolic", "8480-6"),
        _observation("other-patient", "8480-6", patient="p2"),
        _observation("weight", "29463-7"),
    )
    assert [o["id"] for o in chart.observations_with({(LOINC, "8480-6")})] == ["panel", "systolic"]
    assert [o["id"] for o in chart.observations_with({(LOINC, "29463-7"), (LOINC, "8867-4")})] == ["hr", "weight"]
    assert chart.observations_with({(LOINC, "0000-0")}) == []
    assert chart.observations_with(set()) == []


def test_observation_codes_are_read_as_the_clinical_functions_read_them() -> None:
    """Whitespace inside a code and a coding without a system match as concept_has_code says."""
    spaced = _observation("spaced", "8867-4")
    spaced["code"]["coding"][0]["code"] = " 8867- 4 "
    no_system = _observation("no-system", "8867-4")
    del no_system["code"]["coding"][0]["system"]
    chart = _chart(spaced, no_system)
    assert [o["id"] for o in chart.observations_with({(LOINC, "8867-4")})] == ["spaced"]
    assert [o["id"] for o in chart.observations_with({("", "8867-4")})] == ["no-system"]


def test_for_patient_is_worked_out_once_per_request() -> None:
    chart = _chart(_observation("a", "8867-4"), _observation("b", "8867-4", patient="p2"))
    first = chart.for_patient("Observation")
    assert [o["id"] for o in first] == ["a"]
    assert chart.for_patient("Observation") is first


def _med(rid: str, code: str, status: str = "active") -> dict:
    return {"resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
            "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-11-01",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code}]}}


def test_therapies_of_a_class_are_shared_by_every_order_and_leave_out_the_order_itself() -> None:
    engine = Engine.default()
    first, second = _med("d1", "36437", "draft"), _med("d2", "36437", "draft")  # two sertraline drafts
    chart = _chart(_med("chart-ssri", "36437"), drafts=(first, second))
    facts = ChartFacts(engine.kb, chart, TODAY)
    facts.order = first
    assert [t["id"] for t in facts.therapies([], "levomilnacipran-serotonergic")] == ["MedicationRequest/chart-ssri", "MedicationRequest/d2"]
    facts.order = second
    assert [t["id"] for t in facts.therapies([], "levomilnacipran-serotonergic")] == ["MedicationRequest/chart-ssri", "MedicationRequest/d1"]
    assert list(facts._therapies) == ["levomilnacipran-serotonergic"]  # the class was worked out once for both orders


def test_value_set_membership_is_remembered_per_concept_and_gives_the_same_answer() -> None:
    kb = Engine.default().kb
    ssri = {"coding": [{"system": RXNORM, "code": "36437", "display": "Sertraline"}], "text": "Sertraline"}
    unknown = {"coding": [{"system": RXNORM, "code": "0"}], "text": "no such drug"}
    for concept in (ssri, unknown):
        for vs in ("levomilnacipran-serotonergic", "levomilnacipran-maoi"):
            fresh = kb._match(vs, concept)
            assert kb.match(vs, concept) == fresh
            assert kb.match(vs, dict(concept)) == fresh  # answered from the memo
    assert kb.match("levomilnacipran-serotonergic", ssri) is not None and kb.match("levomilnacipran-maoi", ssri) is None
    # A copy with the same codings and text has the same key; a different text does not.
    assert concept_key(dict(ssri)) == concept_key(ssri)
    assert concept_key({**ssri, "text": "Zoloft"}) != concept_key(ssri)
    assert concept_key(["not", "a", "concept"]) is None


def test_chart_reads_are_answered_once_per_request_and_arguments() -> None:
    engine = Engine.default()
    rate = _observation("hr", "8867-4")
    rate["valueQuantity"] = {"value": 72, "unit": "/min", "code": "/min"}
    facts = ChartFacts(engine.kb, _chart(rate), TODAY)
    vs = next(r["url"] for r in engine.kb.resources if r.get("resourceType") == "ValueSet" and r["url"].endswith("heart-rate"))
    first = facts.latest_observation([], vs, 30)
    assert [fact["value"] for fact in first] == [72]
    assert facts.latest_observation([{"any": "input"}], vs, 30) is first  # the input is not read
    assert facts.latest_observation([], vs, 3) == []  # other arguments, another answer (out of the window)
    # An argument that cannot be a key (an empty collection, as FHIRPath passes one) is answered as before.
    with pytest.raises(TypeError):
        facts.latest_observation([], vs, [])


# -- classes and diagnoses asked once per drug or code, not once per resource --------------------

_DRUGS = [("36437", None), ("5640", None), ("11289", None), ("6011", None), ("343047", None), ("588250", None),
          ("1433239", None), ("0000", None), (None, "Fetzima 40 mg"), (None, "sertraline"), (None, "something else")]
_DIAGNOSES = [("59621000", None), ("370143000", None), ("57054005", None), ("3424008", None), ("230690007", None),
              ("0000", None), (None, "Hypertension"), (None, None)]
SNOMED = "http://snomed.info/sct"


@st.composite
def _charts(draw) -> Chart:
    resources: list[dict] = []
    for index in range(draw(st.integers(0, 12))):
        code, text = draw(st.sampled_from(_DRUGS))
        concept = {"coding": [{"system": RXNORM, "code": code}]} if code else {"text": text}
        resource = {"resourceType": draw(st.sampled_from(["MedicationRequest", "MedicationStatement"])), "id": f"m{index}",
                    "status": draw(st.sampled_from(["active", "stopped", "completed", "on-hold"])),
                    "subject": {"reference": "Patient/p1"}, "medicationCodeableConcept": concept,
                    "authoredOn": draw(st.sampled_from(["2026-11-01", "2025-01-01"]))}
        resources.append(resource)
    for index in range(draw(st.integers(0, 10))):
        code, text = draw(st.sampled_from(_DIAGNOSES))
        condition = {"resourceType": "Condition", "id": f"c{index}", "subject": {"reference": "Patient/p1"},
                     "onsetDateTime": draw(st.sampled_from(["2026-11-01", "2020-01-01"]))}
        if code or text:
            condition["code"] = {"coding": [{"system": SNOMED, "code": code}]} if code else {"text": text}
        status = draw(st.sampled_from([None, "active", "resolved", "remission"]))
        if status:
            condition["clinicalStatus"] = {"coding": [{"code": status}]}
        if draw(st.booleans()):
            condition["verificationStatus"] = {"coding": [{"code": draw(st.sampled_from(["confirmed", "provisional", "refuted"]))}]}
        resources.append(condition)
    drafts = tuple({**_med(f"d{index}", draw(st.sampled_from(["1433239", "36437", "6011"])), "draft")}
                   for index in range(draw(st.integers(1, 2))))
    return _chart(*resources, drafts=drafts)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chart=_charts())
def test_classes_and_diagnoses_asked_per_drug_and_code_give_what_a_scan_of_every_resource_gives(chart: Chart) -> None:
    kb = _ENGINE.kb
    valuesets = [r["url"] for r in kb.resources if r.get("resourceType") == "ValueSet" and "levomilnacipran" in r["url"]]
    facts, scan = ChartFacts(kb, chart, TODAY), ChartFacts(kb, chart, TODAY)
    for order in chart.drafts:
        facts.order = scan.order = order
        for vs in valuesets:
            scanned = [fact for resource in [*chart.for_patient("MedicationRequest", "MedicationStatement"), *chart.drafts]
                       if resource is not order and (match := scan.match(vs, resource)) is not None
                       and (fact := scan._therapy(match, resource)) is not None]
            assert facts.therapies([], vs) == scanned
            for include_inactive in (False, True):
                counting = [c for c in chart.for_patient("Condition") if condition_counts(c, include_inactive=include_inactive)]
                found = [fact for condition in counting if (fact := scan._condition_fact(condition, vs))]
                assert facts.conditions([], vs, include_inactive) == sorted(found, key=lambda fact: not fact["confirmed"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["Patient/p1", "Patient/p2", "https://ehr.example/fhir/Patient/p1/_history/3", "Group/g1",
                                 "p1", "Patient/p1/", "", "Patient/"]), max_size=8))
def test_whose_a_resource_is_is_the_same_read_once_per_reference(references: list[str]) -> None:
    known: dict = {}
    for index, reference in enumerate(references):
        resource = {"resourceType": "Observation", "id": f"o{index}", "subject": {"reference": reference}}
        assert Chart._owner(resource, known) == Chart._owner(resource) == Chart._owner(dict(resource), known)


def test_a_drug_is_one_object_across_requests_and_its_value_set_answers_are_the_fresh_ones() -> None:
    kb = Engine.default().kb
    first = ChartFacts(kb, _chart(_med("a", "36437")), TODAY)
    second = ChartFacts(kb, _chart(_med("b", "36437"), _med("c", "5640")), TODAY)
    drug = first.concepts(first.chart.of_type("MedicationRequest")[0])
    assert second.concepts(second.chart.of_type("MedicationRequest")[0]) is drug  # another request, the same drug
    assert second.concepts(second.chart.of_type("MedicationRequest")[1]) is not drug
    for vs in ("levomilnacipran-serotonergic", "levomilnacipran-maoi", "levomilnacipran-bleeding-risk"):
        fresh = kb._match(vs, drug)
        # A drug coded without a display or text is named by its code.
        expected = None if fresh is None else {"how": fresh[0], "text": fresh[1], "name": f"{RXNORM}|36437"}
        assert kb.drug_match(vs, drug) == expected
        assert second.match(vs, second.chart.of_type("MedicationRequest")[0]) == expected
    assert kb.drug_match("levomilnacipran-serotonergic", drug) is not None  # sertraline is serotonergic


def test_a_substance_read_by_key_makes_its_concepts_only_when_the_answer_is_not_remembered() -> None:
    kb = Engine.default().kb
    made = []

    def concepts() -> list:
        made.append(1)
        return [{"text": "levomilnacipran"}, "levomilnacipran"]

    key = ("test substance", "levomilnacipran")
    first = kb.match_by_key("levomilnacipran", key, concepts)
    assert first == kb._match("levomilnacipran", concepts()) and first is not None
    made.clear()
    assert kb.match_by_key("levomilnacipran", key, concepts) == first and made == []  # remembered: not made again


def _indexed_in_two_passes(chart: Chart) -> tuple[dict, dict, dict]:
    """by_type, by_reference and owners as the index was made in two passes (refs, then owners)."""
    from fhir_module.engine.chart import _PATIENT_DATA, ref
    by_reference: dict = {}
    by_type: dict = {}
    seen: set = set()
    draft_ids = {id(draft) for draft in chart.drafts}
    for full_url, resource in chart._read():
        key = ref(resource)
        if full_url:
            by_reference.setdefault(full_url, resource)
        by_reference.setdefault(key, resource)
        if key in seen or id(resource) in draft_ids:
            continue
        seen.add(key)
        by_type.setdefault(resource["resourceType"], []).append(resource)
    known: dict = {}
    owners = {id(r): Chart._owner(r, known) for t in _PATIENT_DATA for r in by_type.get(t, [])}
    return by_type, by_reference, owners


_ODD_RESOURCES = st.fixed_dictionaries({
    "resourceType": st.sampled_from(["Observation", "Condition", "MedicationRequest", "Patient", "Medication", "Basic"]),
    "id": st.sampled_from(["a", "b", "p1"]),
}, optional={"subject": st.sampled_from([{"reference": "Patient/p1"}, {"reference": "Patient/p2"}, {"reference": "Group/g"}, "x"]),
             "patient": st.sampled_from([{"reference": "https://x/Patient/p1/_history/2"}, {}])})


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from([None, "Observation/a", "urn:uuid:1", "https://x/Condition/b"]), _ODD_RESOURCES),
                max_size=12), st.lists(_ODD_RESOURCES, max_size=3))
def test_the_index_made_in_one_pass_is_the_index_of_two(entries: list, drafts: list) -> None:
    prefetch = {"all": {"resourceType": "Bundle", "entry": [{"fullUrl": url, "resource": dict(r)} if url else {"resource": dict(r)}
                                                          for url, r in entries]}}
    context = {"patientId": "p1", "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": dict(r)} for r in drafts]}}
    try:
        chart = Chart.from_request(context, prefetch)
    except Exception:  # noqa: BLE001 - a prefetch naming another patient is refused before any index
        return
    by_type, by_reference, owners = _indexed_in_two_passes(chart)
    assert chart.by_type == by_type and chart.by_reference == by_reference and chart._owners == owners
    assert all(chart.by_type[t][i] is r for t in by_type for i, r in enumerate(by_type[t]))
