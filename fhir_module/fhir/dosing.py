"""Dosing guidelines of the knowledge (`drug.dosing`) as FHIR Dosage structures, R4 and R5.

The knowledge states the starting dose, the maintenance range, the maximum daily dose, renal bands
(creatinine clearance ranges with their own maximum) and maxima that apply with a co-medication
(`<class>_max_daily_mg`). Every number comes from there; each Dosage carries the monograph sentence
it rests on as its text, so a reader sees the source next to the structure.

R4 puts patient characteristics beside the dosages (`administrationGuidelines.patientCharacteristics`,
values as strings); R5 puts them in `indicationGuideline.dosingGuideline.patientCharacteristic` with a
structured `valueRange`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_module.knowledge import Knowledge

from .common import R4
from .terms import find_valueset, mg, number, per_day, quantity, route_concept, valueset_concept

# The knowledge gives renal bands by creatinine clearance (crcl_low/crcl_high, in mL/min); this is the
# value set of the knowledge that codes that measurement.
CRCL_VALUESET = "creatinine-clearance"
CRCL_UNIT = "mL/min"
MAX_SUFFIX = "_max_daily_mg"


@dataclass(frozen=True)
class Band:
    """A group of patients with their own dosing: a renal band or a co-medication."""

    label: str
    text: str  # the monograph sentence
    max_daily_mg: float | None
    # Either a measured range (characteristic + low/high) or a coded state (characteristic only).
    characteristic: dict[str, Any]
    low: float | None = None
    high: float | None = None
    kind: str = "range"  # "range" (a measured CrCl), "condition" or "co-medication"

    @property
    def title(self) -> str:
        """What the dosing applies to, as the Dosage type says it."""
        if self.kind == "co-medication":
            return f"With {self.label[:1].lower()}{self.label[1:]}"
        return f"Renal impairment: {self.label}"

    @property
    def characteristic_type(self) -> str:
        return {"condition": "Condition", "co-medication": "Concomitant medication"}.get(self.kind, self.label)


def _sentence(knowledge: Knowledge, path: str) -> str:
    return knowledge.quotes[path].sentence.text


def _crcl_concept(knowledge: Knowledge) -> dict[str, Any]:
    try:
        return valueset_concept(knowledge, CRCL_VALUESET, text="Creatinine clearance")
    except KeyError:
        return {"text": "Creatinine clearance"}


def bands(knowledge: Knowledge) -> list[Band]:
    """Renal bands, then co-medication maxima, in the order of the knowledge file."""
    dosing = knowledge.drug["dosing"]
    result: list[Band] = []
    for index, band in enumerate(dosing.get("renal", [])):
        text = _sentence(knowledge, f"dosing.renal[{index}]")
        limit = band.get("max_daily_mg")
        if "crcl_low" in band or "crcl_high" in band:
            result.append(Band(band["label"], text, limit, _crcl_concept(knowledge),
                               band.get("crcl_low"), band.get("crcl_high")))
        else:
            # A band named by a condition (end-stage renal disease): coded by the value set of that title.
            vs_id = find_valueset(knowledge, title=band["label"])
            concept = valueset_concept(knowledge, vs_id) if vs_id else {"text": band["label"]}
            result.append(Band(band["label"], text, limit, concept, kind="condition"))
    for key, fact in dosing.items():
        if key.endswith(MAX_SUFFIX) and key != MAX_SUFFIX.lstrip("_"):
            prefix = key[: -len(MAX_SUFFIX)]
            vs_id = find_valueset(knowledge, containing=prefix)
            concept = {"text": knowledge.valueset(vs_id).title if vs_id else prefix}
            result.append(Band(concept["text"], _sentence(knowledge, f"dosing.{key}"), fact["value"], concept,
                               kind="co-medication"))
    return result


def band_range_text(band: Band) -> str:
    """`30–59 mL/min`, `≥60 mL/min`: the band as the monograph writes it (R4 has only strings here)."""
    if band.low is not None and band.high is not None:
        return f"{number(band.low)}–{number(band.high)} {CRCL_UNIT}"
    if band.low is not None:
        return f"≥{number(band.low)} {CRCL_UNIT}"
    return f"≤{number(band.high)} {CRCL_UNIT}"


def _dosage(version: str, knowledge: Knowledge, *, text: str, sequence: int | None = None,
            dose: dict[str, Any] | None = None, dose_range: dict[str, Any] | None = None,
            days: float | None = None, max_mg: float | None = None) -> dict[str, Any]:
    """One FHIR Dosage; R5 makes maxDosePerPeriod a list."""
    dosage: dict[str, Any] = {}
    if sequence is not None:
        dosage["sequence"] = sequence
    dosage["text"] = text
    if days is not None:
        dosage["timing"] = {"repeat": {"boundsDuration": quantity(days, "d")}}
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
    """Starting, maintenance and maximum dose for every patient (MedicationKnowledge.*.dosage)."""
    dosing = knowledge.drug["dosing"]
    maximum = dosing.get("max_daily_mg", {}).get("value")
    result: list[dict[str, Any]] = []
    if "start" in dosing:
        start = dosing["start"]
        text = _sentence(knowledge, "dosing.start")
        steps = [_dosage(version, knowledge, text=text, sequence=1, dose=mg(start["dose_mg"]),
                         days=start.get("days"), max_mg=maximum)]
        if "then_mg" in start:
            steps.append(_dosage(version, knowledge, text=text, sequence=2, dose=mg(start["then_mg"]), max_mg=maximum))
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
    return [{"type": {"text": band.title}, "dosage": [
        _dosage(version, knowledge, text=band.text, max_mg=band.max_daily_mg)
    ]}]


def r4_administration_guidelines(knowledge: Knowledge, indication: dict[str, Any]) -> list[dict[str, Any]]:
    """R4 `administrationGuidelines`: one for all patients, then one per band."""
    guidelines = [{"dosage": general_dosages(knowledge, R4), "indicationCodeableConcept": indication}]
    for band in bands(knowledge):
        characteristic: dict[str, Any] = {"characteristicCodeableConcept": band.characteristic}
        if band.kind == "range":
            characteristic["value"] = [band_range_text(band)]
        guidelines.append({
            "dosage": band_dosages(knowledge, R4, band),
            "indicationCodeableConcept": indication,
            "patientCharacteristics": [characteristic],
        })
    return guidelines


def r5_dosing_guidelines(knowledge: Knowledge, version: str) -> list[dict[str, Any]]:
    """R5 `indicationGuideline.dosingGuideline`: CrCl bands as structured ranges."""
    guidelines = [{"dosage": general_dosages(knowledge, version)}]
    for band in bands(knowledge):
        if band.kind == "range":
            value_range: dict[str, Any] = {}
            if band.low is not None:
                value_range["low"] = quantity(band.low, CRCL_UNIT)
            if band.high is not None:
                value_range["high"] = quantity(band.high, CRCL_UNIT)
            characteristic = {"type": band.characteristic, "valueRange": value_range}
        else:
            characteristic = {"type": {"text": band.characteristic_type}, "valueCodeableConcept": band.characteristic}
        guidelines.append({"dosage": band_dosages(knowledge, version, band), "patientCharacteristic": [characteristic]})
    return guidelines
