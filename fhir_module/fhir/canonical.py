"""Canonical URLs of the module's own artifacts, profiles, extensions and code systems.

Every canonical the module publishes starts from one base, so a knowledge engineer who rehosts
the module changes it in one place.
"""

BASE = "http://fhir-module.org/fhir"


def structure_definition(name: str) -> str:
    return f"{BASE}/StructureDefinition/{name}"


# Profiles the exported artifacts declare in meta.profile (profiles/ holds their definitions).
PROFILE_MEDICATION_KNOWLEDGE = structure_definition("monograph-medicationknowledge")
PROFILE_PLAN_DEFINITION = structure_definition("eca-rule-plandefinition")
PROFILE_ACTIVITY_DEFINITION = structure_definition("suggestion-activitydefinition")
PROFILE_VALUE_SET = structure_definition("module-valueset")
PROFILE_CODE_SYSTEM = structure_definition("module-codesystem")
PROFILE_LIBRARY = structure_definition("module-manifest-library")
PROFILE_DOCUMENT_REFERENCE = structure_definition("monograph-documentreference")
PROFILE_CLINICAL_USE_DEFINITION = structure_definition("monograph-clinicalusedefinition")

# Extensions of the module's own.
EXT_RECOGNITION_NAME = structure_definition("recognition-name")  # ValueSet: names that identify a member
EXT_MONOGRAPH_QUOTE = structure_definition("monograph-quote")  # where a rule's sentence sits
EXT_CARD_TEMPLATE = structure_definition("card-template")  # PlanDefinition.action: summary, detail, reason, merge

# Standard extension (R4 through hl7.fhir.uv.extensions.r4) for named FHIRPath variables.
EXT_VARIABLE = "http://hl7.org/fhir/StructureDefinition/variable"

# Each module's own CodeSystems of rule topics and override reasons: see common.topic_system().
EXT_CARD_NOTE = structure_definition("card-note")  # PlanDefinition.action: a note said on every card when it holds
EXT_FOR_EACH = structure_definition("for-each")  # suggestion action: one suggestion per item of the expression
