"""ActivityDefinitions: the orders that card suggestions propose.

The dose update is a once-daily MedicationRequest dosage whose dose the PlanDefinition action fills
in (`dynamicValue`); the engine applies it to the clinician's own draft, so the suggestion keeps
the draft's id and everything but its dosage. The titration (a first dose for some days, then a
second) names the pack that holds it as whole capsules, when the knowledge lists one.
"""

from __future__ import annotations

from typing import Any

from fhir_module.knowledge import Knowledge, terminology
from fhir_module.knowledge.model import Pack

from .canonical import PROFILE_ACTIVITY_DEFINITION
from .common import artifact, canonical_url, scoped_id
from .terms import ndc_codings

UPDATE_DOSE_ID = "once-daily-dose"
TITRATION_ID = "once-daily-titration"
UCUM = "http://unitsofmeasure.org"


def update_dose_url(knowledge: Knowledge) -> str:
    return canonical_url("ActivityDefinition", scoped_id(knowledge, UPDATE_DOSE_ID))


def titration_url(knowledge: Knowledge) -> str:
    return canonical_url("ActivityDefinition", scoped_id(knowledge, TITRATION_ID))


def _once_daily(dose_mg: float | None = None, *, sequence: int | None = None, days: float | None = None) -> dict[str, Any]:
    """A once-daily dosage in mg; the rule fills in (or overrides) the dose and any duration."""
    repeat: dict[str, Any] = {"frequency": 1, "period": 1, "periodUnit": "d"}
    if days is not None:
        repeat["boundsDuration"] = {"value": days, "unit": "d", "system": UCUM, "code": "d"}
    quantity: dict[str, Any] = {"unit": "mg", "system": UCUM, "code": "mg"}
    if dose_mg is not None:
        quantity["value"] = dose_mg
    dosage: dict[str, Any] = {"sequence": sequence} if sequence is not None else {}
    return {**dosage, "text": "once daily", "timing": {"repeat": repeat}, "doseAndRate": [{"doseQuantity": quantity}]}


def titration_pack(knowledge: Knowledge) -> Pack | None:
    """A pack that holds the starting titration as whole capsules: one capsule of the first dose
    for each of its days, and capsules of the second dose (extended-release capsules are not
    split, so a one-product order of 20 mg would need two capsules a day from day 3)."""
    start = knowledge.drug["dosing"].get("start") or {}
    strengths = {product.rxnorm: product.strength_mg for product in knowledge.products}
    for pack in knowledge.packs:
        counts = {strengths.get(code): count for code, count in pack.contents}
        if set(counts) == {start.get("dose_mg"), start.get("then_mg")} and counts[start["dose_mg"]] == start.get("days"):
            return pack
    return None


def build_activitydefinitions(knowledge: Knowledge, version: str) -> list[dict[str, Any]]:
    drug = knowledge.drug["name"]
    resource = artifact(
        knowledge, "ActivityDefinition", scoped_id(knowledge, UPDATE_DOSE_ID),
        title=f"{drug} once daily at a new dose",
        profile=PROFILE_ACTIVITY_DEFINITION,
        description=f"Proposes the draft {drug} order again with a once-daily dosage; the dose comes from the rule.",
    )
    resource.update(kind="MedicationRequest", intent="order", dosage=[_once_daily()])
    titration = artifact(
        knowledge, "ActivityDefinition", scoped_id(knowledge, TITRATION_ID),
        title=f"{drug} once daily, a first dose for some days then a second",
        profile=PROFILE_ACTIVITY_DEFINITION,
        description=f"Proposes the draft {drug} order again as two consecutive once-daily phases; "
                    "the doses and the first phase's days come from the rule.",
    )
    # Its defaults are the monograph's starting titration; a rule's dynamic values may change them.
    start = knowledge.drug["dosing"]["start"]
    titration.update(kind="MedicationRequest", intent="order", dosage=[
        _once_daily(start["dose_mg"], sequence=1, days=start["days"]),
        _once_daily(start["then_mg"], sequence=2),
    ])
    pack = titration_pack(knowledge)
    if pack is not None:  # the product that gives every phase as one capsule
        coding = [{"system": terminology.RXNORM, "code": pack.rxnorm, "display": pack.display}]
        titration["productCodeableConcept"] = {"coding": coding + ndc_codings(knowledge, pack.ndc), "text": pack.display}
    return [resource, titration]
