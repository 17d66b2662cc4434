"""The codes and names that identify the drug of a medication resource.

MedicationRequest, MedicationStatement, MedicationDispense and MedicationAdministration name
their drug by `medicationCodeableConcept` or by `medicationReference` to a Medication (contained,
in the bundle, or on the server). The caller resolves references (it knows the bundle and the
server); `contained_resolver` and `chain_resolvers` help it build the resolver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ._json import as_dict, as_str, codings, dicts

Coding = tuple[str, str, str | None]
Resolver = Callable[[str], dict | None]

# Depth of Medication -> ingredient Medication -> ... references followed (cycles stop earlier).
_MAX_DEPTH = 4


@dataclass(frozen=True)
class MedicationConcepts:
    """Codings of the drug itself, codings of its ingredients, and every name/text seen."""

    codings: tuple[Coding, ...]
    ingredient_codings: tuple[Coding, ...]
    names: tuple[str, ...]
    # Worked out once: a drug is looked up in every value set a request asks about.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.codings, self.ingredient_codings, self.names)))

    def __hash__(self) -> int:
        return self._hash


def contained_resolver(resource: Any) -> Resolver:
    """A resolver for "#id" references to the resources contained in *resource*."""
    contained = {
        as_str(item.get("id")): item for item in dicts(as_dict(resource).get("contained")) if as_str(item.get("id"))
    }

    def resolve(reference: str) -> dict | None:
        if isinstance(reference, str) and reference.startswith("#"):
            return contained.get(reference[1:])
        return None

    return resolve


def chain_resolvers(*resolvers: Resolver) -> Resolver:
    """A resolver that asks each of *resolvers* in turn and returns the first dict found."""

    def resolve(reference: str) -> dict | None:
        for resolver in resolvers:
            found = resolver(reference)
            if isinstance(found, dict):
                return found
        return None

    return resolve


def resources_resolver(entries: Iterable[Any]) -> Resolver:
    """A resolver over resources or Bundle entries: "Type/id", "Type/id/_history/n", absolute
    URLs ending in Type/id, and entry fullUrls (including urn:uuid) are all found."""
    by_key: dict[str, dict] = {}
    for item in entries if not isinstance(entries, (str, bytes, dict)) else []:
        if not isinstance(item, dict):
            continue
        resource, full_url = (item.get("resource"), as_str(item.get("fullUrl"))) if "resource" in item else (item, None)
        if not isinstance(resource, dict):
            continue
        if full_url:
            by_key.setdefault(full_url, resource)
        rtype, rid = as_str(resource.get("resourceType")), as_str(resource.get("id"))
        if rtype and rid:
            by_key.setdefault(f"{rtype}/{rid}", resource)

    def resolve(reference: str) -> dict | None:
        if not isinstance(reference, str) or not reference.strip():
            return None
        reference = reference.strip()
        if reference in by_key:
            return by_key[reference]
        parts = reference.split("/_history/")[0].rstrip("/").split("/")
        if len(parts) >= 2:
            return by_key.get(f"{parts[-2]}/{parts[-1]}")
        return None

    return resolve


def _safe_resolve(resolve: Resolver, reference: Any) -> dict | None:
    ref = as_str(as_dict(reference).get("reference"))
    if ref is None:
        return None
    found = resolve(ref)
    return found if isinstance(found, dict) else None


class _Collector:
    def __init__(self, resolve: Resolver) -> None:
        self.resolve = resolve
        self.codings: list[Coding] = []
        self.ingredients: list[Coding] = []
        self.names: list[str] = []
        self.seen: set[int] = set()

    def concept(self, concept: Any, ingredient: bool) -> None:
        found, names = _concept_parts(concept)
        (self.ingredients if ingredient else self.codings).extend(found)
        self.names.extend(names)

    def reference(self, reference: Any, ingredient: bool, depth: int, resolve: Resolver | None = None) -> None:
        display = as_str(as_dict(reference).get("display"))
        if display:
            self.names.append(display)
        target = _safe_resolve(resolve or self.resolve, reference)
        if target is not None:
            self.medication(target, ingredient, depth)

    def medication(self, medication: dict, ingredient: bool, depth: int) -> None:
        """A Medication (or Substance) resource: its code, then its ingredients."""
        if depth > _MAX_DEPTH or id(medication) in self.seen:
            return
        self.seen.add(id(medication))
        # "#id" inside a Medication names its own contained resources first.
        local = chain_resolvers(contained_resolver(medication), self.resolve)
        self.concept(medication.get("code"), ingredient)
        for item in dicts(medication.get("ingredient")):
            self.concept(item.get("itemCodeableConcept"), True)
            if "itemReference" in item:
                self.reference(item.get("itemReference"), True, depth + 1, local)
            # R5 shape: ingredient.item is a CodeableReference.
            item_r5 = as_dict(item.get("item"))
            self.concept(item_r5.get("concept"), True)
            if "reference" in item_r5:
                self.reference(item_r5.get("reference"), True, depth + 1, local)


def _concept_parts(concept: Any) -> tuple[list[Coding], list[str]]:
    """A CodeableConcept's codings, and the names it gives: each coding's display, then its text."""
    found = codings(concept)
    names = [display for _, _, display in found if display]
    text = as_str(as_dict(concept).get("text"))
    if text:
        names.append(text)
    return found, names


def medication_concepts(resource: Any, resolve: Resolver) -> MedicationConcepts:
    """The codings, ingredient codings and names of the drug a medication resource names.

    *resolve* maps a reference string ("#med", "Medication/1", an absolute URL, a urn:uuid) to
    the Medication it names (None when unknown). A Medication passed in directly is read too.
    Odd input gives empty tuples.
    """
    res = as_dict(resource)
    concept = res.get("medicationCodeableConcept")
    if (isinstance(concept, dict) and "medicationReference" not in res and "medication" not in res
            and res.get("resourceType") != "Medication"):
        # The common shape, read without the collector: a drug named by its code alone. (A
        # Medication is read by its code and ingredients, whatever else it carries.)
        found, names = _concept_parts(concept)
        return MedicationConcepts(tuple(dict.fromkeys(found)), (), tuple(dict.fromkeys(names)))
    collector = _Collector(resolve if callable(resolve) else (lambda _ref: None))
    if res.get("resourceType") == "Medication":
        collector.medication(res, False, 0)
    else:
        collector.concept(res.get("medicationCodeableConcept"), False)
        if "medicationReference" in res:
            collector.reference(res.get("medicationReference"), False, 0)
        # R5 shape: medication is a CodeableReference.
        medication = as_dict(res.get("medication"))
        collector.concept(medication.get("concept"), False)
        if "reference" in medication:
            collector.reference(medication.get("reference"), False, 0)
    return MedicationConcepts(
        codings=tuple(dict.fromkeys(collector.codings)),
        ingredient_codings=tuple(dict.fromkeys(collector.ingredients)),
        names=tuple(dict.fromkeys(collector.names)),
    )
