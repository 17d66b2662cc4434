"""The monograph DocumentReference and the R5 ClinicalUseDefinitions read from the parsed monograph."""

from __future__ import annotations

import base64
import hashlib

import pytest

from fhir_module.fhir.clinicalusedefinition import build_clinical_use_definitions, clinical_use_ids
from fhir_module.fhir.documentreference import build_document_reference
from fhir_module.fhir.medicationknowledge import build_medication_knowledge, drug_id
from fhir_module.monograph import BulletList


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_document_reference_attaches_the_monograph(k, version):
    [doc] = build_document_reference(k, version)
    attachment = doc["content"][0]["attachment"]
    data = base64.b64decode(attachment["data"])
    assert data.decode("utf-8") == k.monograph.text
    assert base64.b64decode(attachment["hash"]) == hashlib.sha1(data).digest()
    assert int(attachment["size"]) == len(data)
    assert attachment["contentType"] == "text/markdown"
    assert attachment["url"] == k.module["monograph"]["url"]
    assert doc["status"] == "current" and doc["date"] == f"{k.module['date']}T00:00:00Z"
    for section in k.monograph.sections:  # the section index: id, title and sentence count
        count = len(section.sentences)
        assert f"- {section.id}: {section.title} ({count} sentence" in doc["description"]
    assert k.monograph.sha256 in doc["description"]


def test_no_clinical_use_definitions_in_r4(k):
    assert build_clinical_use_definitions(k, "R4") == []


def _by_type(k):
    result: dict[str, list[dict]] = {}
    for resource in build_clinical_use_definitions(k, "R5"):
        result.setdefault(resource["type"], []).append(resource)
    return result


def test_indication_is_coded_from_the_value_set(k):
    [indication] = _by_type(k)["indication"]
    concept = indication["indication"]["diseaseSymptomProcedure"]["concept"]
    assert concept["text"] == k.valueset("major-depressive-disorder").title
    assert {"system": "http://snomed.info/sct", "code": "370143000", "display": "Major depressive disorder"} \
        in concept["coding"]
    assert indication["status"]["coding"][0]["code"] == k.module["status"]


def test_contraindications_and_interactions_come_from_the_rules(k):
    by_type = _by_type(k)
    contraindications = {r["contraindication"]["diseaseSymptomProcedure"]["concept"]["text"]: r
                         for r in by_type["contraindication"]}
    topics = dict(k.topics)
    for rule in k.rules:
        if rule.indicator == "critical" and rule.order_kind == "levomilnacipran-order" and "maoi" not in rule.topic:
            assert topics[rule.topic] in contraindications, rule.id
    esrd = contraindications[topics["esrd"]]["contraindication"]
    assert {c["code"] for c in esrd["diseaseSymptomProcedure"]["concept"]["coding"]} == {"46177005", "N18.6"}
    assert esrd["extension"][0]["valueString"] == next(r for r in k.rules if r.topic == "esrd").quote.text

    interactants = {r["interaction"]["interactant"][0]["itemCodeableConcept"]["text"]: r["interaction"]
                    for r in by_type["interaction"]}
    for vs_id in ("maoi", "strong-cyp3a4-inhibitor", "serotonergic", "bleeding-risk"):
        assert k.valueset(vs_id).title in interactants
    maoi = interactants[k.valueset("maoi").title]
    assert any("14 days" in m["text"] for m in maoi["management"])  # the washout sentence, quoted
    serotonergic = interactants[k.valueset("serotonergic").title]
    assert serotonergic["effect"]["concept"]["text"].startswith("Serotonin syndrome")


def test_undesirable_effects_carry_their_frequency_band(k):
    effects = _by_type(k)["undesirable-effect"]
    expected = [(term, block.band) for section in k.monograph.sections for block in section.blocks
                if isinstance(block, BulletList) and block.band for bullet in block.items for term in bullet.terms]
    got = [(e["undesirableEffect"]["symptomConditionEffect"]["concept"]["text"],
            e["undesirableEffect"]["frequencyOfOccurrence"]["text"]) for e in effects]
    assert got == expected
    assert ("Nausea", ">10%") in got and ("Seizures", "<1%") in got


def test_warnings_include_suicidality_and_discontinuation(k):
    warnings = {w["warning"]["code"]["text"]: w["warning"]["description"] for w in _by_type(k)["warning"]}
    assert "Suicidal Ideation" in warnings and "Discontinuation Syndrome" in warnings
    assert "Contraindications" not in warnings and "Interactions" not in warnings
    assert warnings["Discontinuation Syndrome"].startswith("Abrupt discontinuation")


def test_medication_knowledge_lists_every_clinical_use_definition(k):
    ids = [r["id"] for r in build_clinical_use_definitions(k, "R5")]
    assert ids == clinical_use_ids(k) and len(ids) == len(set(ids))
    drug = next(r for r in build_medication_knowledge(k, "R5") if r["id"] == drug_id(k))
    assert [ref["reference"] for ref in drug["clinicalUseIssue"]] == [f"ClinicalUseDefinition/{i}" for i in ids]


def test_the_titration_pack_holds_a_capsule_for_each_dose_of_each_step(k):
    """A pack is the titration's product when it holds each step's dose for every dose of its days:
    days times the drug's doses a day, not days alone (a twice-daily drug needs twice the capsules)."""
    from dataclasses import replace

    from fhir_module.fhir.activitydefinitions import titration_pack

    once_daily = titration_pack(k)
    assert once_daily is not None and k.drug["dosing"]["frequency"]["per_day"] == 1
    dosing = k.drug["dosing"]
    twice_daily = replace(k, drug={**k.drug, "dosing": {**dosing, "frequency": {**dosing["frequency"], "per_day": 2}}})
    assert titration_pack(twice_daily) is None  # the packs hold one capsule a day of each step: half the doses
    doubled = tuple(replace(pack, contents=tuple((code, count * 2) for code, count in pack.contents)) for pack in k.packs)
    assert titration_pack(replace(twice_daily, packs=doubled)).rxnorm == once_daily.rxnorm
