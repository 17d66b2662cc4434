"""ActivityDefinitions: the orders that card suggestions propose, as the knowledge says the drug is given.

`<module>-dose` is one dosage at the drug's frequency (`drug.dosing.frequency`: "once daily" is one
administration a day) whose dose the PlanDefinition action fills in; `<module>-titration` is the drug's
titration (`drug.dosing.titration`, any number of steps), each step a phase of its own, whose doses and
days the action may change. Both name what they order (`productCodeableConcept`): the drug, or for the titration the pack that
holds it as whole capsules when the knowledge lists one. Both create a MedicationRequest: the actions' `dynamicValue.path`s address it (`dosageInstruction[1].doseAndRate...`).
The engine applies them to the clinician's own draft, which keeps its id and all but its dosage.
"""

from __future__ import annotations

from typing import Any

from fhir_module.knowledge import Knowledge, terminology
from fhir_module.knowledge.model import Pack

from .canonical import PROFILE_ACTIVITY_DEFINITION
from .common import artifact, canonical_url, scoped_id
from .terms import drug_code, ndc_codings, number

DOSE_ID = "dose"
TITRATION_ID = "titration"
UCUM = "http://unitsofmeasure.org"
# The element of the created MedicationRequest that holds its dosage phases.
DOSAGE = "dosageInstruction"


def dose_path(phase: int) -> str:
    """Where a phase's dose is, in the MedicationRequest the definition creates."""
    return f"{DOSAGE}[{phase}].doseAndRate[0].doseQuantity.value"


def days_path(phase: int) -> str:
    """Where a phase's duration (in days) is, in the MedicationRequest the definition creates."""
    return f"{DOSAGE}[{phase}].timing.repeat.boundsDuration.value"


def update_dose_url(knowledge: Knowledge) -> str:
    return canonical_url("ActivityDefinition", scoped_id(knowledge, DOSE_ID))


def titration_url(knowledge: Knowledge) -> str:
    return canonical_url("ActivityDefinition", scoped_id(knowledge, TITRATION_ID))


def _dosage(knowledge: Knowledge, dose_mg: float | None = None, *, sequence: int | None = None,
            days: float | None = None) -> dict[str, Any]:
    """One dosage at the drug's frequency, in mg; the rule fills in (or overrides) the dose and any duration."""
    frequency = knowledge.drug["dosing"]["frequency"]
    repeat: dict[str, Any] = {"frequency": number(frequency["per_day"]), "period": 1, "periodUnit": "d"}
    if days is not None:
        repeat["boundsDuration"] = {"value": number(days), "unit": "d", "system": UCUM, "code": "d"}
    quantity: dict[str, Any] = {"unit": "mg", "system": UCUM, "code": "mg"}
    if dose_mg is not None:
        quantity["value"] = number(dose_mg)
    dosage: dict[str, Any] = {"sequence": sequence} if sequence is not None else {}
    return {**dosage, "text": frequency["text"], "timing": {"repeat": repeat}, "doseAndRate": [{"doseQuantity": quantity}]}


def titration_pack(knowledge: Knowledge) -> Pack | None:
    """A pack that holds the titration as whole capsules: one capsule of each step's dose for each of
    its doses (the drug's doses a day times the step's days), and capsules of the last step's dose
    (extended-release capsules are not split, so a one-product order of the first dose would need
    several capsules a day later on)."""
    steps = (knowledge.drug["dosing"].get("titration") or {}).get("steps") or []
    if len(steps) < 2:
        return None
    doses_a_day = knowledge.drug["dosing"]["frequency"]["per_day"]
    strengths = {product.rxnorm: product.strength_mg for product in knowledge.products}
    for pack in knowledge.packs:
        counts = {strengths.get(code): count for code, count in pack.contents}
        if set(counts) == {step["dose_mg"] for step in steps} and all(
                counts[step["dose_mg"]] == step["days"] * doses_a_day for step in steps if "days" in step):
            return pack
    return None


def _titration_product(knowledge: Knowledge) -> dict[str, Any]:
    pack = titration_pack(knowledge)
    if pack is None:
        return drug_code(knowledge)
    coding = [{"system": terminology.RXNORM, "code": pack.rxnorm, "display": pack.display}]
    return {"coding": coding + ndc_codings(knowledge, pack.ndc), "text": pack.display}


def _uses(knowledge: Knowledge) -> tuple[bool, bool]:
    """Whether any suggestion updates a dose (one dosage), and whether any proposes the titration."""
    suggestions = [s for rule in knowledge.rules for s in (rule.suggestion, *rule.extra_suggestions) if s]
    suggestions += [topic.suggestion for topic in knowledge.merged_topics.values()]
    updates = [s for s in suggestions if s.type == "update-dose"]
    return any(not s.steps for s in updates), any(s.steps for s in updates)


def build_activitydefinitions(knowledge: Knowledge, version: str) -> list[dict[str, Any]]:
    """The definitions the module's suggestions use (none that no rule proposes)."""
    drug = knowledge.drug["name"]
    frequency = knowledge.drug["dosing"]["frequency"]["text"]
    single, titrated = _uses(knowledge)
    resources = []
    if single:
        resource = artifact(
            knowledge, "ActivityDefinition", scoped_id(knowledge, DOSE_ID),
            title=f"{drug} {frequency} at a new dose",
            profile=PROFILE_ACTIVITY_DEFINITION,
            description=f"Proposes the draft {drug} order again, {frequency}; the dose comes from the rule.",
        )
        resource.update(kind="MedicationRequest", productCodeableConcept=drug_code(knowledge), intent="order",
                        dosage=[_dosage(knowledge)])
        resources.append(resource)
    if titrated:
        steps = knowledge.drug["dosing"]["titration"]["steps"]
        resource = artifact(
            knowledge, "ActivityDefinition", scoped_id(knowledge, TITRATION_ID),
            title=f"{drug} {frequency}, titrated in {len(steps)} steps",
            profile=PROFILE_ACTIVITY_DEFINITION,
            description=f"Proposes the draft {drug} order again as consecutive {frequency} phases; "
                        "the doses and the days of each phase come from the rule.",
        )
        # Its defaults are the monograph's titration; a rule's dynamic values may change them.
        # The product that gives every phase as one capsule, else the drug.
        resource.update(kind="MedicationRequest", productCodeableConcept=_titration_product(knowledge), intent="order", dosage=[
            _dosage(knowledge, step["dose_mg"], sequence=index + 1, days=step.get("days"))
            for index, step in enumerate(steps)
        ])
        resources.append(resource)
    return resources
