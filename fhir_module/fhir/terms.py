"""Codings and quantities for the drug-level builders, taken from the knowledge and the terminology.

Nothing here knows a drug: codes come from the knowledge's value sets and the verified terminology
tables, numbers from the knowledge file. Only units (UCUM) and FHIR code systems are written here.
"""

from __future__ import annotations

from typing import Any

from fhir_module.knowledge import Knowledge, KnowledgeError
from fhir_module.knowledge import terminology

UCUM = "http://unitsofmeasure.org"
PUBLICATION_STATUS = "http://hl7.org/fhir/publication-status"


def number(value: float | int) -> float | int:
    """Whole numbers as JSON integers (`20`, not `20.0`), so exports read like the knowledge file."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    return int(value) if float(value).is_integer() else float(value)


def quantity(value: float | int, unit: str) -> dict[str, Any]:
    """A UCUM quantity (`mg`, `mL/min`, `d`): the unit doubles as its UCUM code."""
    return {"value": number(value), "unit": unit, "system": UCUM, "code": unit}


def mg(value: float | int) -> dict[str, Any]:
    return quantity(value, "mg")


def per_day(value_mg: float | int) -> dict[str, Any]:
    """`value_mg` mg per 1 day, the Ratio FHIR uses for a maximum daily dose."""
    return {"numerator": mg(value_mg), "denominator": quantity(1, "d")}


def valueset_concept(knowledge: Knowledge, vs_id: str, *, text: str | None = None) -> dict[str, Any]:
    """The enumerated codes of one of the knowledge's value sets as a CodeableConcept.

    Filters (code ranges, hierarchies) cannot be written as codings; the text names the whole set.
    """
    vs = knowledge.valueset(vs_id)
    codings = [
        {"system": include.system, "code": code, **({"display": display} if display else {})}
        for include in vs.includes
        for code, display in include.concepts
    ]
    concept: dict[str, Any] = {}
    if codings:
        concept["coding"] = codings
    concept["text"] = text or vs.title
    return concept


def group_codings(knowledge: Knowledge, group: str, *, only: str | None = None) -> list[dict[str, Any]]:
    """Plain codes (not ranges or hierarchies) of a `codes.csv` group, optionally one code only; a code
    carries the row's display only when the row verifies that display for it alone."""
    return [
        {"system": token.system, "code": token.text, **({"display": token.display} if token.alone else {})}
        for token in knowledge.terminology.code_groups().get(group, ())
        if token.kind == "code" and (only is None or token.text == only)
    ]


def drug_code(knowledge: Knowledge) -> dict[str, Any]:
    """The drug's ingredient code (RxNorm) and its ATC code when the terminology verifies it."""
    drug = knowledge.drug
    ingredient = drug["ingredient"]
    codings = [{"system": terminology.RXNORM, "code": ingredient["rxnorm"], "display": ingredient["name"]}]
    if drug.get("atc"):
        codings += group_codings(knowledge, "atc", only=drug["atc"])
    return {"coding": codings, "text": drug["name"]}


def route_concept(knowledge: Knowledge) -> dict[str, Any]:
    """The route named in the knowledge (`oral`), coded from its `route_<name>` terminology group."""
    route = knowledge.drug["route"]
    codings = group_codings(knowledge, f"route_{route}")
    return {"coding": codings, "text": route} if codings else {"text": route}


def ndc_codings(knowledge: Knowledge, ndcs: tuple[str, ...]) -> list[dict[str, Any]]:
    """NDC package codes with the displays the terminology gives them.

    An NDC the terminology does not list is an unverified code: the build stops rather than export it.
    """
    by_code = {c["code"]: c for c in group_codings(knowledge, "ndc")}
    unknown = [code for code in ndcs if code not in by_code]
    if unknown:
        raise KnowledgeError(f"NDC {', '.join(unknown)} is not in the verified terminology (codes.csv group 'ndc')")
    return [by_code[code] for code in ndcs]


def valueset_with_code(knowledge: Knowledge, codings: list[dict[str, Any]]) -> str | None:
    """The id of the first value set that enumerates one of these codes."""
    wanted = {(c["system"], c["code"]) for c in codings}
    for vs in knowledge.valuesets:
        for include in vs.includes:
            if any((include.system, code) in wanted for code, _ in include.concepts):
                return vs.id
    return None


def publication_status(knowledge: Knowledge) -> dict[str, Any]:
    """R5 ClinicalUseDefinition.status is a CodeableConcept of the publication status."""
    return {"coding": [{"system": PUBLICATION_STATUS, "code": knowledge.module["status"]}]}
