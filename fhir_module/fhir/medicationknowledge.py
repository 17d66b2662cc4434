"""MedicationKnowledge: the drug as an EHR's drug database sees it, R4 4.0.1 and R5 5.0.0.

One ingredient-level MedicationKnowledge (the drug: ingredient and ATC codes, brand names, dosing
guidelines, monograph) and one per product (the RxNorm clinical drug with its strength and NDC package
codes), linked both ways with `relatedMedicationKnowledge`. An EHR that looks up the code of an order
finds the product, its strength and the same dosing guidelines; one that looks up the ingredient finds
the drug. Product entries conform to the monograph-medicationknowledge profile (which requires a
strength); the ingredient-level entry has no strength, so it claims no profile.

Every value comes from the knowledge; the dosing structures are built in `dosing.py`.
"""

from __future__ import annotations

from typing import Any

from fhir_module.knowledge import Knowledge, terminology
from fhir_module.knowledge.model import Product

from .canonical import PROFILE_MEDICATION_KNOWLEDGE
from .common import R4, artifact
from .documentreference import document_id, document_title
from .dosing import r4_administration_guidelines, r5_dosing_guidelines
from .terms import drug_code, group_codings, mg, ndc_codings, route_concept, valueset_concept, valueset_with_code

# MedicationKnowledge.status has its own codes (active | inactive | entered-in-error).
_STATUS = {"active": "active", "draft": "active", "retired": "inactive"}


def drug_id(knowledge: Knowledge) -> str:
    """The id of the ingredient-level MedicationKnowledge."""
    return knowledge.module["id"]


def product_id(knowledge: Knowledge, product: Product) -> str:
    return f"{knowledge.module['id']}-{product.rxnorm}"


def indication_concept(knowledge: Knowledge) -> dict[str, Any]:
    """The indication's condition, coded from its terminology group, named by its value set."""
    indication = knowledge.drug.get("indication")
    if not indication:
        return {}
    codings = group_codings(knowledge, indication["condition"])
    vs_id = valueset_with_code(knowledge, codings) if codings else None
    if vs_id:
        return valueset_concept(knowledge, vs_id)
    return {"coding": codings, "text": indication["condition"]} if codings else {"text": indication["condition"]}


def _header(knowledge: Knowledge, resource_id: str, title: str, profile: str | None) -> dict[str, Any]:
    resource = artifact(knowledge, "MedicationKnowledge", resource_id, title=title, profile=profile, canonical=False)
    resource["status"] = _STATUS.get(knowledge.module["status"], "inactive")
    return resource


def _ingredient_concept(knowledge: Knowledge) -> dict[str, Any]:
    ingredient = knowledge.drug["ingredient"]
    return {
        "coding": [{"system": terminology.RXNORM, "code": ingredient["rxnorm"], "display": ingredient["name"]}],
        "text": ingredient["name"],
    }


def _strength(knowledge: Knowledge, product: Product) -> dict[str, Any]:
    """Strength per unit of the dose form (e.g. per capsule), as the product's RxNorm name states it."""
    return {"numerator": mg(product.strength_mg), "denominator": {"value": 1, "unit": knowledge.drug["dose_form"]}}


def _product_code(knowledge: Knowledge, product: Product) -> dict[str, Any]:
    codings = [{"system": terminology.RXNORM, "code": product.rxnorm, "display": product.display}]
    return {"coding": codings + ndc_codings(knowledge, product.ndc), "text": product.display}


def _monograph(knowledge: Knowledge) -> list[dict[str, Any]]:
    return [{
        "type": {"text": "Drug monograph"},
        "source": {"reference": f"DocumentReference/{document_id(knowledge)}", "display": document_title(knowledge)},
    }]


def _classification(knowledge: Knowledge, version: str) -> list[dict[str, Any]]:
    """ATC when the terminology verifies the code; a class named in the knowledge (`drug.class`) as text."""
    drug = knowledge.drug
    result = []
    atc = group_codings(knowledge, "atc", only=drug["atc"]) if drug.get("atc") else []
    if atc:
        entry: dict[str, Any] = {"type": {"text": "ATC"}, "classification": [{"coding": atc}]}
        if version != R4:
            entry["sourceUri"] = atc[0]["system"]
        result.append(entry)
    drug_class = drug.get("class")
    if drug_class:
        text = drug_class["text"] if isinstance(drug_class, dict) else str(drug_class)
        result.append({"type": {"text": "Pharmacological class"}, "classification": [{"text": text}]})
    return result


def _reference(knowledge: Knowledge, resource_id: str, display: str) -> dict[str, Any]:
    return {"reference": f"MedicationKnowledge/{resource_id}", "display": display}


def _related(knowledge: Knowledge, product: Product | None) -> list[dict[str, Any]]:
    if product is None:
        refs = [_reference(knowledge, product_id(knowledge, p), p.display) for p in knowledge.products]
        return [{"type": {"text": "Product"}, "reference": refs}] if refs else []
    return [{"type": {"text": "Ingredient"}, "reference": [_reference(knowledge, drug_id(knowledge), knowledge.drug["name"])]}]


def _identity(knowledge: Knowledge, product: Product | None) -> dict[str, Any]:
    """Header and code: the ingredient-level resource, or one product (which declares the profile)."""
    if product is None:
        resource = _header(knowledge, drug_id(knowledge), knowledge.drug["name"], None)
        resource["code"] = drug_code(knowledge)
    else:
        resource = _header(knowledge, product_id(knowledge, product), product.display, PROFILE_MEDICATION_KNOWLEDGE)
        resource["code"] = _product_code(knowledge, product)
    return resource


def _r4(knowledge: Knowledge, product: Product | None) -> dict[str, Any]:
    drug = knowledge.drug
    resource = _identity(knowledge, product)
    resource["doseForm"] = {"text": drug["dose_form"]}
    if drug.get("synonyms"):
        resource["synonym"] = list(drug["synonyms"])
    resource["relatedMedicationKnowledge"] = _related(knowledge, product)
    resource["monograph"] = _monograph(knowledge)
    ingredient: dict[str, Any] = {"itemCodeableConcept": _ingredient_concept(knowledge), "isActive": True}
    if product is not None:
        ingredient["strength"] = _strength(knowledge, product)
    resource["ingredient"] = [ingredient]
    resource["intendedRoute"] = [route_concept(knowledge)]
    resource["administrationGuidelines"] = r4_administration_guidelines(knowledge, indication_concept(knowledge))
    classification = _classification(knowledge, R4)
    if classification:
        resource["medicineClassification"] = classification
    return _without_empty(resource)


def _r5(knowledge: Knowledge, product: Product | None, version: str, clinical_use: list[str],
        indication_id: str | None) -> dict[str, Any]:
    drug = knowledge.drug
    resource = _identity(knowledge, product)
    resource["name"] = list(dict.fromkeys([drug["name"], *drug.get("synonyms", [])]))
    resource["relatedMedicationKnowledge"] = _related(knowledge, product)
    resource["monograph"] = _monograph(knowledge)
    indication: dict[str, Any] = {"concept": indication_concept(knowledge)}
    if indication_id:
        indication["reference"] = {"reference": f"ClinicalUseDefinition/{indication_id}"}
    resource["indicationGuideline"] = [{
        "indication": [indication],
        "dosingGuideline": r5_dosing_guidelines(knowledge, version),
    }]
    classification = _classification(knowledge, version)
    if classification:
        resource["medicineClassification"] = classification
    resource["clinicalUseIssue"] = [{"reference": f"ClinicalUseDefinition/{cud}"} for cud in clinical_use]
    ingredient: dict[str, Any] = {"item": {"concept": _ingredient_concept(knowledge)}}
    if product is not None:
        ingredient["strengthRatio"] = _strength(knowledge, product)
    resource["definitional"] = {
        "doseForm": {"text": drug["dose_form"]},
        "intendedRoute": [route_concept(knowledge)],
        "ingredient": [ingredient],
    }
    return _without_empty(resource)


def _without_empty(resource: dict[str, Any]) -> dict[str, Any]:
    """FHIR forbids empty arrays and objects; drop the ones a sparse knowledge file would leave."""
    return {key: value for key, value in resource.items() if value not in ([], {}, None, "")}


def build_medication_knowledge(knowledge: Knowledge, version: str) -> list[dict[str, Any]]:
    """The ingredient-level MedicationKnowledge, then one per product, in the knowledge's order."""
    if version == R4:
        return [_r4(knowledge, None)] + [_r4(knowledge, p) for p in knowledge.products]
    from .clinicalusedefinition import clinical_use_ids, indication_id

    ids = clinical_use_ids(knowledge)
    ind = indication_id(knowledge) if indication_id(knowledge) in ids else None
    return [_r5(knowledge, None, version, ids, ind)] + [_r5(knowledge, p, version, ids, ind) for p in knowledge.products]

