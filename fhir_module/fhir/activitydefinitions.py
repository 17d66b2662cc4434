"""ActivityDefinitions: the orders that card suggestions propose.

The dose update is a once-daily MedicationRequest dosage whose dose the PlanDefinition action fills
in (`dynamicValue`); the engine applies it to the clinician's own draft, so the suggestion keeps
the draft's id and everything but its dosage.
"""

from __future__ import annotations

from typing import Any

from fhir_module.knowledge import Knowledge

from .canonical import PROFILE_ACTIVITY_DEFINITION
from .common import artifact, canonical_url

UPDATE_DOSE_ID = "once-daily-dose"
UCUM = "http://unitsofmeasure.org"


def update_dose_url() -> str:
    return canonical_url("ActivityDefinition", UPDATE_DOSE_ID)


def build_activitydefinitions(knowledge: Knowledge, version: str) -> list[dict[str, Any]]:
    drug = knowledge.drug["name"]
    resource = artifact(
        knowledge, "ActivityDefinition", UPDATE_DOSE_ID,
        title=f"{drug} once daily at a new dose",
        profile=PROFILE_ACTIVITY_DEFINITION,
        description=f"Proposes the draft {drug} order again with a once-daily dosage; the dose comes from the rule.",
    )
    resource.update(
        kind="MedicationRequest",
        intent="order",
        dosage=[{
            "text": "once daily",
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"unit": "mg", "system": UCUM, "code": "mg"}}],
        }],
    )
    return [resource]
