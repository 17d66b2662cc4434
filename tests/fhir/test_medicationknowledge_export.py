"""MedicationKnowledge: codes, products and dosing guidelines follow the knowledge file, R4 and R5.

The last tests edit a copy of the knowledge and of the monograph (a different maximum dose and renal
limit) and check that the export follows: the numbers are read, not written in the builder.
"""

from __future__ import annotations

import re
import shutil
from typing import Any

import pytest
from fhir_checks import knowledge

from fhir_module.fhir.medicationknowledge import build_medication_knowledge, drug_id, product_id
from fhir_module.knowledge import builtin_module_dir, load_knowledge
from fhir_module.knowledge.terminology import RXNORM

UCUM = "http://unitsofmeasure.org"


def _by_id(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in resources}


def _max_per_day(dosage: dict[str, Any]) -> list[float]:
    ratios = dosage.get("maxDosePerPeriod", [])
    ratios = ratios if isinstance(ratios, list) else [ratios]
    for ratio in ratios:
        assert ratio["numerator"]["code"] == "mg" and ratio["numerator"]["system"] == UCUM
        assert ratio["denominator"] == {"value": 1, "unit": "d", "system": UCUM, "code": "d"}
    return [ratio["numerator"]["value"] for ratio in ratios]


def _r4_bands(mk: dict[str, Any]) -> dict[str, list[float]]:
    """R4 guidelines by their CrCl value string (or characteristic text) → maximum mg/day."""
    bands = {}
    for guideline in mk["administrationGuidelines"][1:]:
        characteristic = guideline["patientCharacteristics"][0]
        key = (characteristic.get("value") or [characteristic["characteristicCodeableConcept"]["text"]])[0]
        bands[key] = [m for d in guideline["dosage"] for dose in d["dosage"] for m in _max_per_day(dose)]
    return bands


def test_r4_drug_and_products(k):
    resources = _by_id(build_medication_knowledge(k, "R4"))
    drug = resources[drug_id(k)]
    assert {"system": RXNORM, "code": k.drug["ingredient"]["rxnorm"], "display": k.drug["ingredient"]["name"]} \
        in drug["code"]["coding"]
    assert any(c["system"] == "http://www.whocc.no/atc" and c["code"] == k.drug["atc"] for c in drug["code"]["coding"])
    assert drug["synonym"] == k.drug["synonyms"]
    assert drug["doseForm"] == {"text": k.drug["dose_form"]}
    assert drug["intendedRoute"][0]["coding"][0]["code"] == "26643006"  # SNOMED oral route, from codes.csv
    assert "strength" not in drug["ingredient"][0] and "profile" not in drug.get("meta", {})
    assert drug["monograph"][0]["source"]["reference"].startswith("DocumentReference/")
    assert [ref["reference"] for ref in drug["relatedMedicationKnowledge"][0]["reference"]] == \
        [f"MedicationKnowledge/{product_id(k, p)}" for p in k.products]
    for product in k.products:
        mk = resources[product_id(k, product)]
        codes = [(c["system"], c["code"]) for c in mk["code"]["coding"]]
        assert codes[0] == (RXNORM, product.rxnorm)
        assert codes[1:] == [("http://hl7.org/fhir/sid/ndc", ndc) for ndc in product.ndc]
        strength = mk["ingredient"][0]["strength"]["numerator"]
        assert (strength["value"], strength["code"]) == (product.strength_mg, "mg")
        assert mk["relatedMedicationKnowledge"][0]["reference"][0]["reference"] == f"MedicationKnowledge/{drug_id(k)}"
        assert mk["meta"]["profile"] == ["http://fhir-module.org/fhir/StructureDefinition/monograph-medicationknowledge"]
        assert mk["administrationGuidelines"] == drug["administrationGuidelines"]


def test_r4_dosing_guidelines_follow_knowledge(k):
    dosing = k.drug["dosing"]
    mk = _by_id(build_medication_knowledge(k, "R4"))[drug_id(k)]
    general = mk["administrationGuidelines"][0]
    assert general["indicationCodeableConcept"]["coding"][0]["code"] == "370143000"  # MDD, SNOMED
    by_type = {d["type"]["text"]: d["dosage"] for d in general["dosage"]}
    start = by_type["Starting dose"]
    steps = dosing["titration"]["steps"]
    assert [d["doseAndRate"][0]["doseQuantity"]["value"] for d in start] == [step["dose_mg"] for step in steps]
    assert [d["timing"]["repeat"].get("boundsDuration", {}).get("value") for d in start] == [s.get("days") for s in steps]
    assert {d["timing"]["repeat"]["frequency"] for d in start} == {dosing["frequency"]["per_day"]}
    span = by_type["Maintenance dose"][0]["doseAndRate"][0]["doseRange"]
    assert (span["low"]["value"], span["high"]["value"]) == (dosing["maintenance"]["low_mg"], dosing["maintenance"]["high_mg"])
    for dosages in by_type.values():
        for dosage in dosages:
            assert _max_per_day(dosage) == [dosing["max_daily_mg"]["value"]]
    assert by_type["Maximum daily dose"][0]["text"] == k.quotes["dosing.max_daily_mg"].sentence.text

    bands = _r4_bands(mk)
    for band in dosing["renal"]["bands"]:
        if "high" in band:
            assert bands[f"{band['low']}–{band['high']} mL/min"] == [band["max_daily_mg"]]
        elif "low" in band:
            assert bands[f"≥{band['low']} mL/min"] == []
    assert bands["End-stage renal disease"] == []  # not recommended: said in the text, no maximum
    assert bands["Strong CYP3A4 inhibitors"] == [dosing["co_medication"][0]["max_daily_mg"]]
    types = [d["type"]["text"] for guideline in mk["administrationGuidelines"][1:] for d in guideline["dosage"]]
    assert types == ["Mild renal impairment: no adjustment", "Moderate renal impairment: maximum daily dose",
                     "Severe renal impairment: maximum daily dose", "End-stage renal disease: avoid",
                     "With strong CYP3A4 inhibitors: maximum daily dose"]


def test_r5_structured_ranges_and_clinical_use_links(k):
    resources = _by_id(build_medication_knowledge(k, "R5"))
    drug = resources[drug_id(k)]
    assert drug["name"] == [k.drug["name"], *k.drug["synonyms"]]
    guideline = drug["indicationGuideline"][0]
    assert guideline["indication"][0]["reference"]["reference"] == f"ClinicalUseDefinition/{k.module['id']}-indication"
    ranges = {}
    for dosing_guideline in guideline["dosingGuideline"][1:]:
        characteristic = dosing_guideline["patientCharacteristic"][0]
        if "valueRange" in characteristic:
            assert characteristic["type"]["coding"][0]["code"] == "2164-2"  # LOINC creatinine clearance
            value_range = characteristic["valueRange"]
            low, high = value_range.get("low", {}).get("value"), value_range.get("high", {}).get("value")
            ranges[(low, high)] = [m for d in dosing_guideline["dosage"] for dose in d["dosage"] for m in _max_per_day(dose)]
            assert all(q["code"] == "mL/min" for q in value_range.values())
    expected = {(b["low"], b["high"]): [b["max_daily_mg"]] for b in k.drug["dosing"]["renal"]["bands"] if "high" in b}
    assert ranges == expected
    # One bound: a Quantity with its comparator ("≥60"), never a Range that would claim "≤".
    one_sided = [c["patientCharacteristic"][0] for c in guideline["dosingGuideline"][1:]
                 if "valueQuantity" in c["patientCharacteristic"][0]]
    assert [(c["valueQuantity"]["comparator"], c["valueQuantity"]["value"]) for c in one_sided] == [(">=", 60)]
    assert len(drug["clinicalUseIssue"]) > 10
    for product in k.products:
        mk = resources[product_id(k, product)]
        assert mk["definitional"]["ingredient"][0]["strengthRatio"]["numerator"]["value"] == product.strength_mg


def _edited_knowledge(tmp_path):
    """A copy whose maximum is 100 mg/day (not 120) and whose moderate renal limit is 70 mg (not 80)."""
    folder = builtin_module_dir("levomilnacipran")
    monograph = (folder / "levomilnacipran.md").read_text("utf-8")
    yaml_text = (folder / "knowledge.yaml").read_text("utf-8")
    for old, new in [("up to a maximum of 120 mg once daily", "up to a maximum of 100 mg once daily"),
                     ("ranges from 40 mg to 120 mg", "ranges from 40 mg to 100 mg"),
                     ("may necessitate a maximum dose of 80 mg daily", "may necessitate a maximum dose of 70 mg daily")]:
        assert old in monograph
        monograph = monograph.replace(old, new)
        yaml_text = yaml_text.replace(old, new)
    yaml_text = yaml_text.replace("max_daily_mg: {value: 120,", "max_daily_mg: {value: 100,")
    yaml_text = yaml_text.replace("high_mg: 120,", "high_mg: 100,")
    yaml_text = yaml_text.replace("high: 59, max_daily_mg: 80,", "high: 59, max_daily_mg: 70,")
    # The rules quoting the edited sentences carry the same numbers.
    yaml_text = re.sub(r"(- id: D1\n(?:.*\n)*?.*limit: \{value: )120", r"\g<1>100", yaml_text)
    yaml_text = re.sub(r"(- id: R1\n(?:.*\n)*?\s+limit: \{value: )80", r"\g<1>70", yaml_text)
    path = tmp_path / "knowledge.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    if (folder / "terminology").is_dir():  # the module's own codes come along
        shutil.copytree(folder / "terminology", tmp_path / "terminology")
    return load_knowledge(path, monograph_text=monograph)


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_numbers_follow_an_edited_knowledge_file(tmp_path, version):
    edited = _edited_knowledge(tmp_path)
    assert edited.drug["dosing"]["max_daily_mg"]["value"] == 100
    drug = _by_id(build_medication_knowledge(edited, version))[drug_id(edited)]
    original = _by_id(build_medication_knowledge(knowledge(), version))[drug_id(edited)]
    if version == "R4":
        general = drug["administrationGuidelines"][0]["dosage"]
        assert {m for d in general for dose in d["dosage"] for m in _max_per_day(dose)} == {100}
        assert _r4_bands(drug)["30–59 mL/min"] == [70]
        assert _r4_bands(original)["30–59 mL/min"] == [80]
    else:
        general = drug["indicationGuideline"][0]["dosingGuideline"][0]["dosage"]
        assert {m for d in general for dose in d["dosage"] for m in _max_per_day(dose)} == {100}
    assert drug != original
