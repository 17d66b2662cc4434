"""The patient's chart as one request shows it: prefetch, fetched data and the draft orders.

Resources are gathered from every prefetch value whatever its key (a resource, a searchset
Bundle, nested Bundles), de-duplicated by type and id, and indexed by type. References to
Medication resolve against contained resources, the draft orders, the prefetch and fullUrls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .clinical._json import codings
from .errors import RequestError

MEDICATION_TYPES = ("MedicationRequest", "MedicationStatement")
# Resources that belong to one patient and are read only for the context's patient.
_PATIENT_DATA = (*MEDICATION_TYPES, "Condition", "AllergyIntolerance", "Observation")


def _is_resource(value: Any) -> bool:
    """A JSON object that names its type (and, if it has an id, a string one): the least we read."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("resourceType"), str)
        and isinstance(value.get("id", ""), str)
    )


def _read_into(read: list[tuple[str | None, dict[str, Any]]], value: Any, depth: int = 0) -> None:
    """Append the (fullUrl, resource) pairs of a resource or a Bundle to `read`, depth first;
    anything else is skipped. (A loop appending to one list, not generators: it runs for every
    resource of every request, an unrelated order's among them.)"""
    if not _is_resource(value) or depth > 3:
        return
    if value["resourceType"] != "Bundle":
        read.append((None, value))
        return
    entries = value.get("entry")
    if not isinstance(entries, list):
        return
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        # _is_resource, written out.
        if not (isinstance(resource, dict) and isinstance(resource.get("resourceType"), str)
                and isinstance(resource.get("id", ""), str)):
            continue
        if resource["resourceType"] == "Bundle":
            _read_into(read, resource, depth + 1)
        else:
            full_url = entry.get("fullUrl")
            read.append((full_url if isinstance(full_url, str) else None, resource))


def _take_each(take: Callable[[str | None, dict[str, Any]], None], value: Any, depth: int = 0) -> None:
    """`take(fullUrl, resource)` for each pair `_read_into` would append, in the same order."""
    if not _is_resource(value) or depth > 3:
        return
    if value["resourceType"] != "Bundle":
        take(None, value)
        return
    entries = value.get("entry")
    if not isinstance(entries, list):
        return
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        # _is_resource, written out.
        if not (isinstance(resource, dict) and isinstance(resource.get("resourceType"), str)
                and isinstance(resource.get("id", ""), str)):
            continue
        if resource["resourceType"] == "Bundle":
            _take_each(take, resource, depth + 1)
        else:
            full_url = entry.get("fullUrl")
            take(full_url if isinstance(full_url, str) else None, resource)


def _patients_into(found: list[dict[str, Any]], value: Any, depth: int = 0) -> None:
    """Append the Patients `_read_into` would read from a resource or a Bundle (by the same rules,
    in the same order), without reading the other resources into pairs: a chart that is never
    indexed (an unrelated order's) needs its Patients only."""
    if not _is_resource(value) or depth > 3:
        return
    if value["resourceType"] == "Patient":
        found.append(value)
    if value["resourceType"] != "Bundle" or not isinstance(value.get("entry"), list):
        return
    for entry in value["entry"]:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        kind = resource.get("resourceType")
        if (kind == "Patient" or kind == "Bundle") and isinstance(kind, str) and isinstance(resource.get("id", ""), str):
            if kind == "Bundle":
                _patients_into(found, resource, depth + 1)
            else:
                found.append(resource)


def ref(resource: dict[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


@dataclass
class Chart:
    """The request's chart. Its patient and draft orders are read at once (a prefetch naming
    another patient is refused whatever the orders); the rest is indexed when first asked for:
    an order no kind of the service applies to is judged on the orders alone, and its request is
    answered without the chart's resources ever being indexed."""

    patient_id: str
    patient: dict[str, Any] | None
    drafts: list[dict[str, Any]]
    # The prefetch values, and the draft orders' (fullUrl, resource) pairs: see `_read`.
    _sources: tuple[list[Any], list[tuple[str | None, dict[str, Any]]]] = field(
        default=([], []), repr=False, compare=False)
    _by_type: dict[str, list[dict[str, Any]]] | None = field(default=None, repr=False, compare=False)
    _by_reference: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False, compare=False)
    # What the chart could not use, said in every card's detail so nothing is ignored silently.
    _notes: list[str] = field(default_factory=list, repr=False, compare=False)
    # Indexes built on first use and shared by every rule of the request (read-only lists).
    _for_patient: dict[tuple[str, ...], list[dict[str, Any]]] = field(default_factory=dict, repr=False, compare=False)
    _observations_by_code: dict[tuple[str, str], list[int]] | None = field(default=None, repr=False, compare=False)
    _owners: dict[int, str | None] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_request(cls, context: dict[str, Any], prefetch: dict[str, Any]) -> "Chart":
        patient_id = context["patientId"]
        draft_pairs: list[tuple[str | None, dict[str, Any]]] = []
        _read_into(draft_pairs, context.get("draftOrders"))
        drafts = [resource for _, resource in draft_pairs]
        values = list(prefetch.values())
        found: list[dict[str, Any]] = []
        for value in values:
            _patients_into(found, value)
        # The chart's Patients (the first of each id; a draft order is never one of the chart's).
        draft_ids = {id(draft) for draft in drafts}
        patients: dict[str, dict[str, Any]] = {}
        for resource in found:
            if id(resource) not in draft_ids:
                patients.setdefault(ref(resource), resource)
        patient = next((p for p in patients.values() if p.get("id") == patient_id), None)
        if patients and patient is None:
            others = ", ".join(sorted(patients))
            raise RequestError(400, f"the prefetch holds {others}, not the context's Patient/{patient_id}", ["prefetch"])
        return cls(patient_id, patient, drafts, (values, draft_pairs))

    def _read(self) -> list[tuple[str | None, dict[str, Any]]]:
        """(fullUrl, resource) of the prefetch values, then of the draft orders, as read: what
        `_index` takes, in this order (tests compare the index with this reading)."""
        values, draft_pairs = self._sources
        read: list[tuple[str | None, dict[str, Any]]] = []
        for value in values:
            _read_into(read, value)
        return read + draft_pairs

    def _index(self) -> None:
        """Index the resources read, by type and by reference, and say whose they are.

        One pass over the prefetch: each resource is taken as it is read, not read into a list of
        pairs first and taken from it (for 5,000 resources, the second pass re-read ~13 MB of
        dicts from memory)."""
        by_reference: dict[str, dict[str, Any]] = {}
        by_type: dict[str, list[dict[str, Any]]] = {}
        seen: set[str] = set()
        draft_ids = {id(draft) for draft in self.drafts}
        # Whose each resource of a patient's type is, read once: for_patient filters on it for
        # every type asked.
        owners: dict[int, str | None] = {}
        known: dict[str, str | None] = {}
        owner = self._owner

        # The chart holds what the prefetch says; the drafts stay apart. A chart order that a draft
        # of the same id modifies stays in the chart: it is the therapy the patient is on now.
        def take(full_url: str | None, resource: dict[str, Any]) -> None:
            kind = resource["resourceType"]
            key = f"{kind}/{resource.get('id')}"  # ref(resource), written out: every resource of the chart
            if full_url:
                by_reference.setdefault(full_url, resource)
            by_reference.setdefault(key, resource)
            if key in seen or id(resource) in draft_ids:
                return
            seen.add(key)
            if kind in by_type:
                by_type[kind].append(resource)
            else:
                by_type[kind] = [resource]
            if kind in _PATIENT_DATA:
                owners[id(resource)] = owner(resource, known)

        values, draft_pairs = self._sources
        for value in values:
            _take_each(take, value)
        for full_url, resource in draft_pairs:
            take(full_url, resource)
        self._by_type, self._by_reference, self._owners = by_type, by_reference, owners
        elsewhere = sorted({owner for owner in owners.values() if owner not in (None, self.patient_id)})
        if elsewhere:
            ignored = sum(1 for owner in owners.values() if owner in elsewhere)
            self._notes.append(
                f"{ignored} resource(s) in the request belong to another patient "
                f"({', '.join('Patient/' + o for o in elsewhere)}) and were ignored."
            )

    @property
    def indexed(self) -> bool:
        """Whether the resources were indexed (something asked for them)."""
        return self._by_type is not None

    @property
    def by_type(self) -> dict[str, list[dict[str, Any]]]:
        if self._by_type is None:
            self._index()
        return self._by_type  # type: ignore[return-value]

    @property
    def by_reference(self) -> dict[str, dict[str, Any]]:
        if self._by_type is None:
            self._index()
        return self._by_reference

    @property
    def notes(self) -> list[str]:
        if self._by_type is None:
            self._index()
        return self._notes

    @staticmethod
    def _owner(resource: dict[str, Any], known: dict[str, str | None] | None = None) -> str | None:
        """The id of the patient a resource belongs to (`subject`/`patient`), None if it names none.

        References may be relative, absolute or versioned (`Patient/1/_history/3`). `known` keeps
        the owners of the references read so far (a chart names its patient many times)."""
        holder = resource.get("subject") or resource.get("patient")
        reference = holder.get("reference") if isinstance(holder, dict) else None
        if not isinstance(reference, str):
            return None
        if known is None:
            return Chart._reference_owner(reference)
        if reference not in known:
            known[reference] = Chart._reference_owner(reference)
        return known[reference]

    @staticmethod
    def _reference_owner(reference: str) -> str | None:
        """The patient id a `subject`/`patient` reference names ("(not a patient)" for another type)."""
        parts = reference.split("/_history/")[0].rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] == "Patient":
            return parts[-1]
        return parts[-1] if len(parts) == 1 else "(not a patient)"

    def is_draft(self, resource: dict[str, Any]) -> bool:
        return any(resource is draft for draft in self.drafts)

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [resource for t in types for resource in self.by_type.get(t, [])]

    def for_patient(self, *types: str) -> list[dict[str, Any]]:
        """Resources of the types that belong to this patient (or name no patient at all).
        Computed once per request and types; callers must not change the list."""
        found = self._for_patient.get(types)
        if found is None:
            mine = (None, self.patient_id)
            resources = self.of_type(*types)  # indexes the chart first, its owners with it
            owners = self._owners
            found = self._for_patient[types] = [
                r for r in resources if (owners[id(r)] if id(r) in owners else self._owner(r)) in mine]
        return found

    def observations_with(self, codes: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
        """The patient's Observations coded (on `code` or a component's `code`) with one of the
        (system, code) pairs, in chart order: what a rule reading those codes needs to look at."""
        observations = self.for_patient("Observation")
        if self._observations_by_code is None:
            index: dict[tuple[str, str], list[int]] = {}
            for position, observation in enumerate(observations):
                components = observation.get("component") if isinstance(observation.get("component"), list) else []
                for concept in [observation.get("code"), *(c.get("code") for c in components if isinstance(c, dict))]:
                    for system, code, _ in codings(concept):
                        positions = index.setdefault((system, code), [])
                        if not positions or positions[-1] != position:
                            positions.append(position)
            self._observations_by_code = index
        positions = sorted({p for pair in codes for p in self._observations_by_code.get(pair, ())})
        return [observations[p] for p in positions]

    def resolver(self, holder: dict[str, Any]):
        """A function resolving references made from `holder` (contained first, then the chart)."""

        def resolve(reference: str) -> dict[str, Any] | None:
            if not isinstance(reference, str):
                return None
            if reference.startswith("#"):
                for contained in holder.get("contained") or []:
                    if isinstance(contained, dict) and contained.get("id") == reference[1:]:
                        return contained
                return None
            if reference in self.by_reference:
                return self.by_reference[reference]
            parts = reference.rstrip("/").split("/")
            if len(parts) >= 2:
                return self.by_reference.get(f"{parts[-2]}/{parts[-1]}")
            return None

        return resolve

    def unresolved_medication(self, order: dict[str, Any]) -> dict[str, Any] | None:
        """The reference by which an order names its drug, when the request does not hold the
        Medication it points to (R4 `medicationReference`, R5 `medication.reference`)."""
        medication = order.get("medication")
        for reference in (order.get("medicationReference"),
                          medication.get("reference") if isinstance(medication, dict) else None):
            if isinstance(reference, dict) and isinstance(reference.get("reference"), str):
                if self.resolver(order)(reference["reference"]) is None:
                    return reference
        return None

    def draft(self, reference: str) -> dict[str, Any]:
        """The draft order a selection names: `Type/id` as the spec shows, or the entry's fullUrl
        (`urn:uuid:…`, an absolute URL), which some clients send instead."""
        for draft in self.drafts:
            if ref(draft) == reference:
                return draft
        found = self.by_reference.get(reference)
        if found is not None and any(found is draft for draft in self.drafts):
            return found
        tail = "/".join(reference.split("/_history/")[0].rstrip("/").split("/")[-2:])
        for draft in self.drafts:
            if ref(draft) == tail:
                return draft
        raise RequestError(400, f"selection {reference!r} is not among context.draftOrders", ["context.selections"])
