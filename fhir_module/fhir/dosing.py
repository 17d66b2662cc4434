"""Dosing guidelines of the knowledge (`drug.dosing`) as FHIR Dosage structures, R4 and R5.

The knowledge states how the drug is given (frequency), the titration (any number of steps), the
maintenance range, the maximum daily dose, and groups of patients with their own dosing: renal bands
(bounds on a renal measure, inclusive or exclusive as the monograph writes them, or a condition),
co-medications, hepatic states and other conditions, each with a maximum daily dose, "avoid" or "no
adjustment". Every number comes from there; each Dosage carries the monograph sentence it rests on
as its text, so a reader sees the source next to the structure.

R4 puts patient characteristics beside the dosages (`administrationGuidelines.patientCharacteristics`,
values as strings); R5 puts them in `indicationGuideline.dosingGuideline.patientCharacteristic`, with a
structured `valueRange` (both bounds inclusive) or `valueQuantity` with a comparator (one bound).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_module.knowledge import Knowledge

from .common import R4
from .terms import mg, number, per_day, quantity, route_concept, valueset_concept

# The kinds of patient groups in `drug.dosing`, and how a Dosage type names each.
GROUPS = {"renal": "Renal", "co_medication": "Concomitant medication", "hepatic": "Hepatic", "conditions": "Condition"}


@dataclass(frozen=True)
class Band:
    """A group of patients with their own dosing: a renal band, a co-medication, a condition."""

    label: str
    text: str  # the monograph sentence
    max_daily_mg: float | None
    avoid: bool
    characteristic: dict[str, Any]  # what identifies the group: the measure, or the coded state
    kind: str  # a key of GROUPS
    unit: str | None = None  # the measure's unit, for a band by bounds
    low: float | None = None  # inclusive lower bound
    above: float | None = None  # exclusive lower bound
    high: float | None = None  # inclusive upper bound
    below: float | None = None  # exclusive upper bound

    @property
    def measured(self) -> bool:
        return any(bound is not None for bound in (self.low, self.above, self.high, self.below))

    @property
    def title(self) -> str:
        """What the dosing applies to, as the Dosage type says it."""
        label = self.label[:1].upper() + self.label[1:]
        return f"With {self.label}" if self.kind == "co_medication" else label

    @property
    def advice(self) -> str:
        if self.avoid:
            return "Avoid"
        return "Maximum daily dose" if self.max_daily_mg is not None else "No adjustment"


def _sentence(knowledge: Knowledge, path: str) -> str:
    return knowledge.quotes[path].sentence.text


def bands(knowledge: Knowledge) -> list[Band]:
    """Renal bands, then co-medications, hepatic states and conditions, in the order of the knowledge file."""
    dosing = knowledge.drug["dosing"]
    result: list[Band] = []
    for group in GROUPS:
        if group == "renal":
            renal = dosing.get("renal")
            items = [(f"dosing.renal.bands[{i}]", band) for i, band in enumerate(renal["bands"])] if renal else []
        else:
            items = [(f"dosing.{group}[{i}]", item) for i, item in enumerate(dosing.get(group, []))]
        for path, item in items:
            common = dict(label=item["label"], text=_sentence(knowledge, path), max_daily_mg=item.get("max_daily_mg"),
                          avoid=bool(item.get("avoid")), kind=group)
            if "valueset" in item:  # a coded state or a drug class
                result.append(Band(characteristic=valueset_concept(knowledge, item["valueset"]), **common))
            else:  # bounds on the renal measure
                measure = dosing["renal"]["measure"]
                concept = valueset_concept(knowledge, measure["valueset"], text=measure["title"])
                result.append(Band(characteristic=concept, unit=measure["unit"], low=item.get("low"),
                                   above=item.get("above"), high=item.get("high"), below=item.get("below"), **common))
    return result


def band_range_text(band: Band) -> str:
    """The band as the monograph writes it: `30–59 mL/min`, `≥60 mL/min`, `<30 mL/min`, `15 to <30 mL/min`."""
    lower = f"≥{number(band.low)}" if band.low is not None else f">{number(band.above)}" if band.above is not None else None
    upper = f"≤{number(band.high)}" if band.high is not None else f"<{number(band.below)}" if band.below is not None else None
    if band.low is not None and band.high is not None:
        return f"{number(band.low)}–{number(band.high)} {band.unit}"
    if lower and upper:
        return f"{lower.lstrip('≥')} to {upper} {band.unit}"
    return f"{lower or upper} {band.unit}"


def _r5_value(band: Band) -> dict[str, Any]:
    """R5 patientCharacteristic.value[x]: a Range when both bounds are inclusive (a FHIR Range is),
    a Quantity with its comparator for one bound, else the text (no FHIR type says '15 to below 30')."""
    if band.low is not None and band.high is not None:
        return {"valueRange": {"low": quantity(band.low, band.unit or ""), "high": quantity(band.high, band.unit or "")}}
    bounds = [(value, sign) for value, sign in ((band.low, ">="), (band.above, ">"), (band.high, "<="), (band.below, "<"))
              if value is not None]
    if len(bounds) == 1:
        value, comparator = bounds[0]
        return {"valueQuantity": {**quantity(value, band.unit or ""), "comparator": comparator}}
    return {"valueCodeableConcept": {"text": band_range_text(band)}}


def _dosage(version: str, knowledge: Knowledge, *, text: str, sequence: int | None = None,
            dose: dict[str, Any] | None = None, dose_range: dict[str, Any] | None = None,
            days: float | None = None, max_mg: float | None = None, given: bool = True) -> dict[str, Any]:
    """One FHIR Dosage; R5 makes maxDosePerPeriod a list. `given`: at the drug's frequency and route."""
    dosage: dict[str, Any] = {}
    if sequence is not None:
        dosage["sequence"] = sequence
    dosage["text"] = text
    if given:
        frequency = knowledge.drug["dosing"]["frequency"]
        repeat: dict[str, Any] = {"frequency": number(frequency["per_day"]), "period": 1, "periodUnit": "d"}
        if days is not None:
            repeat["boundsDuration"] = quantity(days, "d")
        dosage["timing"] = {"repeat": repeat, "code": {"text": frequency["text"]}}
        dosage["route"] = route_concept(knowledge)
    if dose is not None:
        dosage["doseAndRate"] = [{"doseQuantity": dose}]
    elif dose_range is not None:
        dosage["doseAndRate"] = [{"doseRange": dose_range}]
    if max_mg is not None:
        ratio = per_day(max_mg)
        dosage["maxDosePerPeriod"] = ratio if version == R4 else [ratio]
    return dosage


def general_dosages(knowledge: Knowledge, version: str) -> list[dict[str, Any]]:
    """Titration, maintenance and maximum dose for every patient (MedicationKnowledge.*.dosage)."""
    dosing = knowledge.drug["dosing"]
    maximum = dosing.get("max_daily_mg", {}).get("value")
    result: list[dict[str, Any]] = []
    if "titration" in dosing:
        text = _sentence(knowledge, "dosing.titration")
        steps = [_dosage(version, knowledge, text=text, sequence=index + 1, dose=mg(step["dose_mg"]),
                         days=step.get("days"), max_mg=maximum)
                 for index, step in enumerate(dosing["titration"]["steps"])]
        result.append({"type": {"text": "Starting dose"}, "dosage": steps})
    if "maintenance" in dosing:
        span = dosing["maintenance"]
        result.append({"type": {"text": "Maintenance dose"}, "dosage": [
            _dosage(version, knowledge, text=_sentence(knowledge, "dosing.maintenance"),
                    dose_range={"low": mg(span["low_mg"]), "high": mg(span["high_mg"])}, max_mg=maximum)
        ]})
    if maximum is not None:
        result.append({"type": {"text": "Maximum daily dose"}, "dosage": [
            _dosage(version, knowledge, text=_sentence(knowledge, "dosing.max_daily_mg"), max_mg=maximum)
        ]})
    return result


def band_dosages(knowledge: Knowledge, version: str, band: Band) -> list[dict[str, Any]]:
    """The band's dosing: its maximum, or (avoid, no adjustment) the sentence alone, the drug not given."""
    return [{"type": {"text": f"{band.title}: {band.advice.lower()}"}, "dosage": [
        _dosage(version, knowledge, text=band.text, max_mg=band.max_daily_mg, given=not band.avoid)
    ]}]


def r4_administration_guidelines(knowledge: Knowledge, indication: dict[str, Any]) -> list[dict[str, Any]]:
    """R4 `administrationGuidelines`: one for all patients, then one per band."""
    guidelines = [{"dosage": general_dosages(knowledge, R4), "indicationCodeableConcept": indication}]
    for band in bands(knowledge):
        characteristic: dict[str, Any] = {"characteristicCodeableConcept": band.characteristic}
        if band.measured:
            characteristic["value"] = [band_range_text(band)]
        guidelines.append({
            "dosage": band_dosages(knowledge, R4, band),
            "indicationCodeableConcept": indication,
            "patientCharacteristics": [characteristic],
        })
    return guidelines


def r5_dosing_guidelines(knowledge: Knowledge, version: str) -> list[dict[str, Any]]:
    """R5 `indicationGuideline.dosingGuideline`: measured bands as structured values, others coded."""
    guidelines = [{"dosage": general_dosages(knowledge, version)}]
    for band in bands(knowledge):
        if band.measured:
            characteristic = {"type": band.characteristic, **_r5_value(band)}
        else:
            characteristic = {"type": {"text": GROUPS[band.kind]}, "valueCodeableConcept": band.characteristic}
        guidelines.append({"dosage": band_dosages(knowledge, version, band), "patientCharacteristic": [characteristic]})
    return guidelines
