"""The one table of functions knowledge expressions may call: FHIRPath's standard functions (those
fhirpathpy implements) and the module's generic clinical functions, answered by ChartFacts.

The evaluator (expressions.py) registers the module's functions from this table, and the knowledge
check refuses any call it does not list, or with an argument count it does not accept.
"""

from __future__ import annotations

from typing import Mapping

from .fhirpath.functions import BOOLEAN, NUMBER, STANDARD_FUNCTIONS, STRING, VALUESET, Function

VS = VALUESET

# Function name → (ChartFacts method, argument kinds by argument count).
MODULE_FUNCTIONS: Mapping[str, tuple[str, Function]] = {
    name: (method, Function(name, arities))
    for name, method, arities in (
        ("medicationMatch", "medication_match", {1: (VS,)}),
        ("dailyDose", "daily_dose", {0: ()}),
        ("ageYears", "age_years", {0: ()}),
        ("ageRange", "age_range", {0: ()}),
        ("ref", "ref", {0: ()}),
        ("therapies", "therapies", {1: (VS,)}),
        ("renalFunction", "renal_function", {5: (VS,) * 5}),
        ("renalNotUsed", "renal_not_used", {5: (VS,) * 5}),
        ("conditions", "conditions", {1: (VS,), 2: (VS, BOOLEAN)}),
        ("allergies", "allergies", {1: (VS,), 2: (VS, VS), 3: (VS, VS, VS)}),
        ("latestObservation", "latest_observation", {2: (VS, NUMBER)}),
        ("latestObservationWithValue", "latest_observation_with_value", {3: (VS, VS, NUMBER)}),
        ("bloodPressure", "blood_pressure", {4: (VS, VS, VS, NUMBER)}),
        ("conceptIn", "concept_in", {1: (VS,)}),
        ("resolveIn", "resolve_in", {1: (VS,)}),
    )
}

# What each function reads from the patient's chart (the prefetch) beyond the order itself and
# the Medication it names: an order kind asks for the data its expressions read, and no more.
CHART_READS: Mapping[str, tuple[str, ...]] = {
    "medicationMatch": (),
    "dailyDose": (),
    "ageYears": (),  # of its input: `%patient` is read through the variable (below)
    "ageRange": (),
    "ref": (),
    "therapies": ("MedicationRequest", "MedicationStatement"),
    "renalFunction": ("Observation", "Patient"),
    "renalNotUsed": ("Observation", "Patient"),
    "conditions": ("Condition",),
    "allergies": ("AllergyIntolerance",),
    "latestObservation": ("Observation",),
    "latestObservationWithValue": ("Observation",),
    "bloodPressure": ("Observation",),
    "conceptIn": (),
    "resolveIn": ("Condition",),
}

FUNCTIONS: Mapping[str, Function] = {
    **STANDARD_FUNCTIONS,
    **{name: function for name, (_, function) in MODULE_FUNCTIONS.items()},
}


def fhirpathpy_kinds(function: Function) -> dict[int, list[str]]:
    """A module function's arities as fhirpathpy checks them (a value set is a String to it)."""
    return {count: [STRING if kind == VALUESET else kind for kind in kinds] for count, kinds in function.arities.items()}
