"""Generic clinical functions of the engine: units, doses, ages, renal function, therapy
timelines, medication identity, value-set membership and observation facts.

They read FHIR R4 JSON as plain dicts, never name a drug or a dose limit (codes and limits come
in as arguments from the knowledge artifacts), and never raise on malformed input: they return
None, False, an empty result or a `DoseUnknown` with a reason. Every result carries `evidence`
text for the card detail.
"""

from .age import AgeRange, age_range, age_years
from .dates import fhir_date_bounds, months_before, parse_fhir_date, parse_fhir_date_latest
from .dose import DoseResult, DoseUnknown, daily_dose
from .medication import (
    MedicationConcepts,
    chain_resolvers,
    contained_resolver,
    medication_concepts,
    resources_resolver,
)
from .observations import (
    BloodPressure,
    ObservationValue,
    allergy_counts,
    blood_pressure,
    condition_counts,
    condition_date,
    condition_dates,
    latest_observation,
    observation_date,
    observation_usable,
)
from .renal import RenalCodes, RenalResult, renal_function
from .timeline import TherapyStatus, days_since, therapy_status
from .units import creatinine_mg_dl, days_in_period, is_unit_dose, mass_mg, pressure_mmhg, weight_kg
from .valueset import Match, ValueSetIndex, name_matches, normalise_code, normalise_name, range_regex

__all__ = [
    "AgeRange",
    "age_range",
    "BloodPressure",
    "DoseResult",
    "DoseUnknown",
    "Match",
    "MedicationConcepts",
    "ObservationValue",
    "RenalCodes",
    "RenalResult",
    "TherapyStatus",
    "ValueSetIndex",
    "age_years",
    "allergy_counts",
    "blood_pressure",
    "chain_resolvers",
    "condition_counts",
    "condition_date",
    "condition_dates",
    "contained_resolver",
    "creatinine_mg_dl",
    "daily_dose",
    "days_in_period",
    "days_since",
    "fhir_date_bounds",
    "is_unit_dose",
    "latest_observation",
    "mass_mg",
    "medication_concepts",
    "months_before",
    "name_matches",
    "normalise_code",
    "normalise_name",
    "observation_date",
    "observation_usable",
    "parse_fhir_date",
    "parse_fhir_date_latest",
    "pressure_mmhg",
    "range_regex",
    "renal_function",
    "resources_resolver",
    "therapy_status",
    "weight_kg",
]
