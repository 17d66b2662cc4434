"""The generic functions that knowledge expressions call, over one request's chart.

Each returns plain dicts (FHIRPath sees them as objects) with the values a rule compares and an
`evidence` text naming values, dates and resources, for the card detail. Value sets are named by
id (resolved against the module's canonical base) or by canonical URL. Nothing here knows a drug.
"""

from __future__ import annotations

import copy
import weakref
from datetime import date
from functools import cached_property, wraps
from typing import Any, Callable

from .chart import MEDICATION_TYPES, Chart, ref
from .clinical._json import codings as codings_of
from .clinical._json import fmt_rounded
from .clinical.age import age_range, age_years
from .clinical.dates import parse_fhir_date
from .clinical.dose import DoseResult, daily_dose
from .clinical.medication import MedicationConcepts, medication_concepts
from .clinical.observations import (
    UNCONFIRMED_VERIFICATION,
    allergy_counts,
    blood_pressure,
    clinical_status_text,
    condition_counting,
    condition_dates,
    latest_observation,
    status_codes,
    unconfirmed_text,
)
from .clinical.renal import RenalAssessment, RenalCodes, renal_assessment
from .clinical.timeline import TherapyStatus, days_since, therapy_status
from .clinical.valueset import normalise_name
from .knowledgebase import KnowledgeBase, concept_key, strength_mg


def _chart_read(method: Callable[..., list[dict[str, Any]]]) -> Callable[..., list[dict[str, Any]]]:
    """A function of the chart and its arguments alone (not of its input): answered once per
    request and arguments, however many rules ask (the FHIRPath layer copies what it returns)."""

    @wraps(method)
    def answer(self: "ChartFacts", inputs: list[Any], *args: Any) -> list[dict[str, Any]]:
        key = (method.__name__, args)
        try:
            return self._chart_reads[key]
        except KeyError:
            found = self._chart_reads[key] = method(self, inputs, *args)
            return found
        except TypeError:  # an argument that cannot be a key (an empty collection): just answer
            return method(self, inputs, *args)

    return answer


class ChartFacts:
    """Answers the knowledge's functions for one request; the evaluator sets `order` per order.

    What several rules ask of the same resource (its medication concepts, whether it is in a value
    set, its daily dose, the therapies of a class) is worked out once per request and shared:
    caches are keyed by the resource's identity, which the chart holds for the whole request.
    """

    def __init__(self, kb: KnowledgeBase, chart: Chart, today: date) -> None:
        self.kb = kb
        self.chart = chart
        self.today = today
        self.order: dict[str, Any] | None = None
        self._therapies: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
        self._concepts: dict[int, MedicationConcepts] = {}
        self._doses: dict[int, dict[str, Any]] = {}
        self._statuses: dict[int, TherapyStatus] = {}
        self._standings: dict[int, tuple[str, bool, bool, bool, int | None, str] | None] = {}
        # What a therapy fact holds to work out its dose later: a strong reference would be a
        # cycle (facts -> therapies -> fact -> facts) keeping the request in memory until a full
        # garbage collection.
        self._weak_self = weakref.ref(self)
        self._conditions: dict[tuple[str, bool], list[dict[str, Any]]] = {}
        self._counting: dict[bool, list[dict[str, Any]]] = {}
        self._condition_codes: dict[bool, dict[Any, dict[str, Any]] | None] = {}
        self._keys: dict[int, Any] = {}
        self._chart_reads: dict[tuple[str, tuple[Any, ...]], list[dict[str, Any]]] = {}
        self._renal_assessments: dict[tuple[str, ...], RenalAssessment] = {}

    # --- medications -------------------------------------------------------------------------

    def concepts(self, resource: dict[str, Any]) -> MedicationConcepts:
        """The drug a resource names; resources naming the same drug share one object (a chart
        repeats its drugs, and so do requests), so that what is known of a drug is worked out once."""
        key = id(resource)
        found = self._concepts.get(key)
        if found is None:
            found = medication_concepts(resource, self.chart.resolver(resource))
            found = self._concepts[key] = self.kb.drug(found)
        return found

    @cached_property
    def _medications(self) -> list[dict[str, Any]]:
        """The chart's medications and the drafts: where therapies are looked for."""
        return [*self.chart.for_patient(*MEDICATION_TYPES), *self.chart.drafts]

    @cached_property
    def _medication_drugs(self) -> list[tuple[dict[str, Any], MedicationConcepts]]:
        """Each medication with its drug, in chart order."""
        return [(resource, self.concepts(resource)) for resource in self._medications]

    @cached_property
    def _chart_drugs(self) -> dict[int, MedicationConcepts]:
        """The drugs the medications name, each once."""
        return {id(concepts): concepts for _, concepts in self._medication_drugs}

    def match(self, vs: str, resource: dict[str, Any]) -> dict[str, Any] | None:
        """How the resource's drug is in the value set (by code, ingredient or name), or None;
        shared by the resources naming that drug (readers must not change it)."""
        return self.kb.drug_match(vs, self.concepts(resource))

    def medication_match(self, inputs: list[Any], vs: str) -> list[dict[str, Any]]:
        return [m for resource in inputs if isinstance(resource, dict) and (m := self.match(vs, resource))]

    def unit_strength_mg(self, request: dict[str, Any]) -> float | None:
        """The mg in one capsule or tablet of what the request orders: the known product of its
        code, else the strength its referenced Medication states (`ingredient.strength`)."""
        known = self.kb.strength_mg(self.concepts(request))
        if known is not None:
            return known
        reference = request.get("medicationReference")
        medication = self.chart.resolver(request)(reference.get("reference")) if isinstance(reference, dict) else None
        return strength_mg(medication) if isinstance(medication, dict) else None

    def dose_of(self, resource: dict[str, Any]) -> dict[str, Any]:
        key = id(resource)
        if key not in self._doses:
            self._doses[key] = self._dose_of(resource)
        return self._doses[key]

    def _dose_of(self, resource: dict[str, Any]) -> dict[str, Any]:
        if resource.get("resourceType") == "MedicationStatement":
            # A statement records its dosage as `dosage`; the arithmetic is the same.
            resource = {**resource, "resourceType": "MedicationRequest", "dosageInstruction": resource.get("dosage")}
        result = daily_dose(resource, self.unit_strength_mg)
        if isinstance(result, DoseResult):
            return {
                "mgPerDay": result.mg_per_day,
                "perAdministrationMg": result.per_administration_mg,
                "administrationsPerDay": result.administrations_per_day,
                "startMgPerDay": result.start_mg_per_day if result.start_mg_per_day is not None else result.mg_per_day,
                "evidence": result.evidence,
            }
        return {"reason": result.reason}

    def daily_dose(self, inputs: list[Any]) -> list[dict[str, Any]]:
        return [self.dose_of(r) for r in inputs if isinstance(r, dict) and r.get("resourceType") == "MedicationRequest"]

    def therapies(self, inputs: list[Any], vs: str) -> list[dict[str, Any]]:
        """Every medication in the chart or among the other drafts whose drug is in the value set
        (the class is worked out once per request; each order leaves out itself)."""
        if vs not in self._therapies:
            found = []
            # A class is asked of each drug the chart names, not of each resource: most classes
            # hold none of them, and the chart is read only for those that hold some.
            matches = {key: match for key, drug in self._chart_drugs.items()
                       if (match := self.kb.drug_match(vs, drug)) is not None}
            if matches:
                for resource, drug in self._medication_drugs:
                    match = matches.get(id(drug))
                    fact = self._therapy(match, resource) if match is not None else None
                    if fact is not None:
                        found.append((resource, fact))
            self._therapies[vs] = found
        # The order being checked is not its own therapy (its chart copy, if any, is its history).
        return [fact for resource, fact in self._therapies[vs] if resource is not self.order]

    def _is_replaced(self, resource: dict[str, Any]) -> bool:
        """A chart order a draft replaces, or a statement that records one (`basedOn`/`derivedFrom`
        it): the patient's therapy is being changed, not duplicated."""
        if ref(resource) in self._replaced:
            return True
        if resource.get("resourceType") != "MedicationStatement":
            return False
        sources = [item for key in ("basedOn", "derivedFrom") for item in resource.get(key) or [] if isinstance(item, dict)]
        return any(_type_and_id(item.get("reference")) in self._replaced for item in sources)

    @cached_property
    def _replaced(self) -> set[str]:
        """Chart orders that a draft replaces (names as its prior prescription)."""
        replaced = {ref(draft) for draft in self.chart.drafts}  # modified in place: same id
        for draft in self.chart.drafts:
            prior = draft.get("priorPrescription")
            if isinstance(prior, dict) and isinstance(prior.get("reference"), str):
                # Relative, absolute or versioned: the last Type/id of the reference.
                replaced.add(_type_and_id(prior["reference"]))
        return replaced

    def _status(self, resource: dict[str, Any]) -> TherapyStatus:
        """Where a chart therapy stands today, once per resource whatever classes it is in."""
        key = id(resource)
        if key not in self._statuses:
            self._statuses[key] = therapy_status(resource, self.today)
        return self._statuses[key]

    def _therapy(self, found: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any] | None:
        """The fact of a medication whose drug is in the class as `found` says."""
        standing = self._standing(resource)
        if standing is None:
            return None
        reference, is_draft, current, replaced, ended_days_ago, said = standing
        fact: dict[str, Any] = {"id": reference, "name": found["name"], "draft": is_draft, "current": current,
                                "replaced": replaced, "sources": [reference]}
        if ended_days_ago is not None:
            fact["endedDaysAgo"] = ended_days_ago
        recognised = f" (recognised by name '{found['text']}')" if found["how"] == "name" else ""
        fact["evidence"] = f"{found['name']}: {said}{recognised}"
        if resource.get("resourceType") in MEDICATION_TYPES:
            # Most therapies are only asked whether they are current: the dose waits to be read.
            return _TherapyFact(fact, self._weak_self, resource)
        return fact

    def _standing(self, resource: dict[str, Any]) -> tuple[str, bool, bool, bool, int | None, str] | None:
        """What a therapy fact says of its resource whatever the class asked (reference, draft,
        current, replaced, days since it ended, its status in words), once per resource; None for
        a chart therapy that does not count."""
        key = id(resource)
        try:
            return self._standings[key]
        except KeyError:
            pass
        reference = ref(resource)
        standing: tuple[str, bool, bool, bool, int | None, str] | None
        if self.chart.is_draft(resource):
            standing = (reference, True, False, self._is_replaced(resource), None, "another order being written now")
        else:
            status = self._status(resource)
            ended = days_since(status.ended, self.today) if status.ended is not None else None
            standing = (reference, False, status.current, self._is_replaced(resource), ended, status.evidence) \
                if status.counts else None
        self._standings[key] = standing
        return standing

    # --- patient ----------------------------------------------------------------------------

    def age_years(self, inputs: list[Any]) -> list[int]:
        ages = [age_years(p.get("birthDate"), self.today) for p in inputs if isinstance(p, dict)]
        return [age for age in ages if age is not None]

    def age_range(self, inputs: list[Any]) -> list[dict[str, Any]]:
        """The patient's possible ages today (two for a partial birth date), for age rules that must
        hold for every one of them: `%age.high < 18`, `%age.low >= 65`."""
        facts = []
        for patient in inputs:
            found = age_range(patient.get("birthDate"), self.today) if isinstance(patient, dict) else None
            if found is not None:
                facts.append({"low": found.low, "high": found.high, "partial": found.partial, "text": found.text,
                              "evidence": f"age {found.text}", "sources": [ref(patient)]})
        return facts

    def ref(self, inputs: list[Any]) -> list[str]:
        return [ref(r) for r in inputs if isinstance(r, dict) and r.get("resourceType") and r.get("id")]

    def _renal(self, crcl: str, mass: str, molar: str, weight: str, egfr: str) -> RenalAssessment:
        key = (crcl, mass, molar, weight, egfr)
        if key not in self._renal_assessments:
            sets = [self.kb.codes(vs) for vs in key]
            self._renal_assessments[key] = renal_assessment(
                (), self.chart.patient or {}, self.today, RenalCodes(*sets), coded=self.chart.observations_with)
        return self._renal_assessments[key]

    def renal_function(self, inputs: list[Any], crcl: str, mass: str, molar: str, weight: str, egfr: str):
        assessment = self._renal(crcl, mass, molar, weight, egfr)
        result = assessment.result
        if result is None:
            return []
        short = f"{'CrCl' if result.method != 'egfr' else 'eGFR'} {fmt_rounded(result.ml_min)} mL/min"
        evidence = result.evidence
        if assessment.not_used:
            evidence += f" (not used: {'; '.join(why for _, why, _ in assessment.not_used)})"
        sources = list(dict.fromkeys([*result.sources, *(source for _, _, source in assessment.not_used)]))
        return [{"mlMin": result.ml_min, "method": result.method, "date": result.date.isoformat(),
                 "short": short, "evidence": evidence, "sources": sources}]

    def renal_not_used(self, inputs: list[Any], crcl: str, mass: str, molar: str, weight: str, egfr: str) -> list[str]:
        """What was found but could not be used for the renal function (no unit, no sex, ...)."""
        return [why for _, why, _ in self._renal(crcl, mass, molar, weight, egfr).not_used]

    def _key(self, concept: dict[str, Any]) -> Any:
        """The concept's memo key for KnowledgeBase.match, worked out once per request."""
        key = id(concept)
        if key not in self._keys:
            self._keys[key] = concept_key(concept)
        return self._keys[key]

    def _condition_fact(self, condition: dict[str, Any], vs: str) -> dict[str, Any] | None:
        concept = condition.get("code")
        found = self.kb.match(vs, concept, self._key(concept)) if isinstance(concept, dict) else None
        if found is None:
            return None
        name = (concept or {}).get("text") or next((d for _, _, d in codings_of(concept) if d), None) \
            or next((self.kb.display_of(system, code) or code for system, code, _ in codings_of(concept) if code), "condition")
        codes = ", ".join(code for _, code, _ in codings_of(concept))
        dates = condition_dates(condition)
        status = clinical_status_text(condition.get("clinicalStatus"))
        # A diagnosis not yet confirmed (provisional, differential) still counts, and is said.
        verification = sorted(status_codes(condition.get("verificationStatus")) & UNCONFIRMED_VERIFICATION)
        fact: dict[str, Any] = {"id": ref(condition), "name": name, "confirmed": not verification,
                                "verification": verification[0] if verification else "confirmed",
                                "unconfirmed": unconfirmed_text(verification[0]) if verification else "",
                                "sources": [ref(condition)]}
        said = [codes, status] if codes else [status]
        if dates:
            newest = max(dates)
            fact["date"] = newest.isoformat()
            fact["daysAgo"] = min(days_since(d, self.today) for d in dates)
            said.append(newest.isoformat())
        if verification:
            said.append(fact["unconfirmed"])
        if found[0] == "name":
            said.append(f"recognised by name '{found[1]}'")
        fact["evidence"] = f"{name} ({', '.join(said)})"
        return fact

    def conditions(self, inputs: list[Any], vs: str, include_inactive: bool = False) -> list[dict[str, Any]]:
        key = (vs, bool(include_inactive))
        if key not in self._conditions:
            counting = self._counting_conditions(bool(include_inactive))
            # Asked of each diagnosis the chart names, not of each Condition: the chart is read
            # only when the value set holds one of them.
            found = [fact for condition in counting if (fact := self._condition_fact(condition, vs))] \
                if self._may_hold_a_condition(vs, bool(include_inactive)) else []
            # Confirmed diagnoses first: a card names the firmest ground it stands on.
            self._conditions[key] = sorted(found, key=lambda fact: not fact["confirmed"])
        return self._conditions[key]

    def _may_hold_a_condition(self, vs: str, include_inactive: bool) -> bool:
        """Whether the value set holds the code of one of the counting conditions (a code that
        cannot be keyed is taken as "may")."""
        if include_inactive not in self._condition_codes:
            keys: dict[Any, dict[str, Any]] | None = {}
            for condition in self._counting_conditions(include_inactive):
                concept = condition.get("code")
                if not isinstance(concept, dict):
                    continue  # never matched (see _condition_fact)
                key = self._key(concept)
                if key is None:
                    keys = None
                    break
                keys.setdefault(key, concept)
            self._condition_codes[include_inactive] = keys
        keys = self._condition_codes[include_inactive]
        if keys is None:
            return True
        match = self.kb.match
        for key, concept in keys.items():  # a loop, not any() over a generator: asked for every value set
            if match(vs, concept, key) is not None:
                return True
        return False

    def _counting_conditions(self, include_inactive: bool) -> list[dict[str, Any]]:
        """The conditions that count, whatever the value set."""
        if include_inactive not in self._counting:
            self._counting[include_inactive] = [condition for condition, active, either in self._condition_counting
                                                if (either if include_inactive else active)]
        return self._counting[include_inactive]

    @cached_property
    def _condition_counting(self) -> list[tuple[dict[str, Any], bool, bool]]:
        """Each Condition with whether it counts without and with the inactive ones, read once."""
        return [(condition, *condition_counting(condition)) for condition in self.chart.for_patient("Condition")]

    @_chart_read
    def allergies(self, inputs: list[Any], *vs_ids: str) -> list[dict[str, Any]]:
        """Allergies and intolerances that count, to a substance in one of the value sets: the
        allergy's `code`, or (EHRs that code only the reaction) a `reaction.substance`."""
        facts = []
        for allergy in self.chart.for_patient("AllergyIntolerance"):
            if not allergy_counts(allergy):
                continue
            reactions = allergy.get("reaction") if isinstance(allergy.get("reaction"), list) else []
            concepts = [c for c in [allergy.get("code"), *(r.get("substance") for r in reactions if isinstance(r, dict))]
                        if isinstance(c, dict)]
            found = next(((concept, match) for concept in concepts for vs in vs_ids
                          if (match := self._substance_match(vs, concept))), None)
            if found is None:
                continue
            concept, (how, what) = found
            name = next(iter(_texts(concept)), what)
            notes = [f"recognised by name '{what}'"] if how == "name" else []
            unconfirmed = "unconfirmed" in status_codes(allergy.get("verificationStatus"))
            if unconfirmed:
                notes.insert(0, "not confirmed")
            evidence = f"{name} ({'; '.join(notes)})" if notes else name
            facts.append({"id": ref(allergy), "name": name, "confirmed": not unconfirmed,
                          "verification": "unconfirmed" if unconfirmed else "confirmed",
                          "evidence": evidence, "sources": [ref(allergy)]})
        return facts

    def _substance_match(self, vs: str, concept: dict[str, Any]) -> tuple[str, str] | None:
        """How a substance is in the value set, by its codes or one of its texts. The texts are
        derived from the concept, so its key stands for both, and they are read only when the
        knowledge base has not answered for that key yet."""
        key = _with_texts(concept, self._key(concept))
        if key is None:
            return self.kb.match(vs, [concept, *_texts(concept)])
        return self.kb.match_by_key(vs, key, lambda: [concept, *_texts(concept)])

    @_chart_read
    def latest_observation(self, inputs: list[Any], vs: str, days: float) -> list[dict[str, Any]]:
        codes = self.kb.codes(vs)
        found = latest_observation(self.chart.observations_with(codes), codes, self.today, int(days))
        if found is None:
            return []
        fact = {"value": found.value, "unit": found.unit, "date": found.date.isoformat(), "evidence": found.evidence,
                "sources": [found.reference]}
        return [{k: v for k, v in fact.items() if v is not None}]

    @_chart_read
    def latest_observation_with_value(self, inputs: list[Any], vs: str, value_vs: str, days: float):
        codes = self.kb.codes(vs)
        found = latest_observation(self.chart.observations_with(codes), codes, self.today, int(days))
        if found is None:
            return []
        # An answer is read by its code first, then by its text or a coding's display, coded or not
        # (LOINC LA15173-0 "Pregnant" is not in the terminology, its display is). A text counts
        # only when it is exactly a concept's name ("Pregnant"), never when it merely contains one
        # ("Not pregnant").
        coded = any(self.kb.contains(value_vs, system, code) for system, code, _ in found.concept)
        texts = [found.text, *(display for _, _, display in found.concept)]
        named = any(normalise_name(text) in self.kb.display_names(value_vs) for text in texts if text)
        if not (coded or named):
            return []
        return [{"date": found.date.isoformat(), "evidence": found.evidence, "name": found.text or "positive",
                 "sources": [found.reference]}]

    @_chart_read
    def blood_pressure(self, inputs: list[Any], panel: str, systolic: str, diastolic: str, days: float):
        codes = [self.kb.codes(vs) for vs in (panel, systolic, diastolic)]
        found = blood_pressure(self.chart.observations_with(frozenset().union(*codes)), *codes, self.today, int(days))
        if found is None:
            return []
        text = f"{fmt_rounded(found.systolic) if found.systolic is not None else '?'}/" \
               f"{fmt_rounded(found.diastolic) if found.diastolic is not None else '?'}"
        fact = {"systolic": found.systolic, "diastolic": found.diastolic, "text": text,
                "date": found.date.isoformat(), "evidence": found.evidence, "sources": list(found.references)}
        return [{k: v for k, v in fact.items() if v is not None}]

    def concept_in(self, inputs: list[Any], vs: str) -> list[bool]:
        return [any(self.kb.match(vs, concept) is not None for concept in inputs if isinstance(concept, dict))]

    def resolve_in(self, inputs: list[Any], vs: str) -> list[dict[str, Any]]:
        facts = []
        for reference in inputs:
            target = self.chart.resolver(self.order or {})(reference.get("reference")) if isinstance(reference, dict) else None
            if target and target.get("resourceType") == "Condition" and (fact := self._condition_fact(target, vs)):
                facts.append(fact)
        return facts


class _TherapyFact(dict):
    """A therapy fact whose `mgPerDay` (its resource's daily dose, when that can be computed) is
    worked out on first read: a rule that asks only whether a therapy is current or drafted
    (`therapies('x').where(current or draft)`) never pays for the dose of every ended therapy of a
    long chart. Reading the dose, or the fact whole (items, iteration, length, equality, a copy,
    JSON), works it out first, so every reader sees exactly the fact with its dose. Read-only."""

    __slots__ = ("_dose", "_convert")

    def __init__(self, fields: dict[str, Any], facts: "weakref.ref[ChartFacts]", resource: dict[str, Any],
                 convert: Callable[[Any], Any] | None = None) -> None:
        super().__init__(fields)
        self._dose: tuple[weakref.ref[ChartFacts], dict[str, Any]] | None = (facts, resource)
        self._convert = convert  # how a copy made by FHIRPath holds the dose (see fhirpath_copy)

    def _full(self) -> "_TherapyFact":
        pending, self._dose = self._dose, None
        if pending is not None:
            facts, resource = pending[0](), pending[1]
            if facts is None:
                raise RuntimeError("a therapy fact was read after its request was answered")
            found = facts.dose_of(resource)
            if "mgPerDay" in found:
                dose = found["mgPerDay"]
                dict.__setitem__(self, "mgPerDay", dose if self._convert is None else self._convert(dose))
        return self

    def fhirpath_copy(self, convert: Callable[[Any], Any]) -> dict[str, Any]:
        """The copy an expression's value holds (fhirpath.runtime.result: each item converted by
        `convert`, a float made a Decimal), the dose still worked out on first read, and converted
        the same way: an expression that hands on a therapy (`therapies('x').where(current)`) does
        not read its dose for the rules that do not."""
        fields = {key: convert(item) for key, item in dict.items(self)}
        if self._dose is None:
            return fields  # whole already: the plain copy
        return _TherapyFact(fields, self._dose[0], self._dose[1], convert)

    def get(self, key: Any, default: Any = None) -> Any:
        if key == "mgPerDay" and self._dose is not None:
            self._full()
        return dict.get(self, key, default)

    def __getitem__(self, key: Any) -> Any:
        if key == "mgPerDay" and self._dose is not None:
            self._full()
        return dict.__getitem__(self, key)

    def __contains__(self, key: Any) -> bool:
        if key == "mgPerDay" and self._dose is not None:
            self._full()
        return dict.__contains__(self, key)

    def keys(self):  # type: ignore[override]
        return dict.keys(self._full())

    def values(self):  # type: ignore[override]
        return dict.values(self._full())

    def items(self):  # type: ignore[override]
        return dict.items(self._full())

    def __iter__(self):
        return dict.__iter__(self._full())

    def __reversed__(self):
        return dict.__reversed__(self._full())

    def __len__(self) -> int:
        return dict.__len__(self._full())

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, _TherapyFact):
            other._full()
        return dict.__eq__(self._full(), other)

    def __ne__(self, other: Any) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return dict.__repr__(self._full())

    def __or__(self, other: Any) -> Any:
        return dict(self.items()) | other

    def __ror__(self, other: Any) -> Any:
        return other | dict(self.items())

    def copy(self) -> dict[str, Any]:  # type: ignore[override]
        return dict(self.items())

    def __copy__(self) -> dict[str, Any]:
        return dict(self.items())

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return copy.deepcopy(dict(self.items()), memo)

    def __reduce_ex__(self, protocol: Any) -> Any:
        return dict, (dict(self.items()),)


def _with_texts(concept: dict[str, Any], key: Any) -> Any:
    """The memo key of a concept matched together with its texts (the text as written)."""
    return None if key is None else ("with texts", key, concept.get("text") if isinstance(concept.get("text"), str) else None)


def _type_and_id(reference: Any) -> str | None:
    """"Type/id" of a relative, absolute or versioned reference."""
    if not isinstance(reference, str):
        return None
    return "/".join(reference.split("/_history/")[0].rstrip("/").split("/")[-2:])


def _texts(concept: dict[str, Any]) -> list[str]:
    """A CodeableConcept's text, then its codings' displays."""
    texts = [concept["text"]] if isinstance(concept.get("text"), str) and concept["text"] else []
    return texts + [d for _, _, d in codings_of(concept) if d]


__all__ = ["ChartFacts", "parse_fhir_date"]
