"""The knowledge the engine applies, read from FHIR artifacts (bundles, or the built-in modules' build).

Everything drug-specific the engine uses comes from here: PlanDefinitions by hook, value sets,
product strengths (MedicationKnowledge), the ActivityDefinitions that suggestions use, and for each
PlanDefinition its module (label, version, override reasons). Several modules load side by side:
each PlanDefinition names its value sets by canonical URL and its override reasons by dependency,
so nothing of one module leaks into another's cards. Reading is done once; requests only look up.
"""

from __future__ import annotations

import base64
import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from .actions import OVERRIDE_REASONS_LABEL, CompiledActions
from .clinical._json import as_number, as_str, codings, json_copy
from .clinical.medication import MedicationConcepts
from .clinical.units import mass_mg
from .clinical.valueset import ValueSetIndex, name_matches, normalise_code, normalise_name
from .errors import KnowledgeLoadError
from .knowledgecheck import KnowledgeCheckError, check_knowledge, errors, is_eca_rule



@dataclass(frozen=True)
class ModuleInfo:
    """What the cards of one PlanDefinition say of the module they come from."""

    label: str
    version: str
    override_reasons: tuple[dict[str, str], ...] = ()

    @property
    def name(self) -> str:
        return f"{self.label} {self.version}".strip()

    @classmethod
    def unknown(cls) -> "ModuleInfo":
        return cls("Knowledge module", "")


@dataclass(frozen=True)
class Product:
    system: str
    code: str
    display: str
    strength_mg: float
    primary: bool = True  # the MedicationKnowledge's first coding (what a suggestion names)
    names: tuple[str, ...] = ()  # synonyms and ingredient names, to recognise a text-only order


def _names(knowledge: dict[str, Any]) -> tuple[str, ...]:
    names = [n for n in knowledge.get("synonym") or [] if isinstance(n, str)]
    for ingredient in knowledge.get("ingredient") or []:
        if isinstance(ingredient, dict):
            concept = ingredient.get("itemCodeableConcept") or {}
            names += [d for _, _, d in codings(concept) if d]
            if isinstance(concept.get("text"), str):
                names.append(concept["text"])
    return tuple(dict.fromkeys(names))


def strength_mg(knowledge: dict[str, Any]) -> float | None:
    """Strength per unit dose (capsule, tablet) of a product: `ingredient.strength` of a
    MedicationKnowledge or a Medication (R4), or the R5 MedicationKnowledge form."""
    ratios = [i.get("strength") for i in knowledge.get("ingredient") or [] if isinstance(i, dict)]
    for definitional in [knowledge.get("definitional")] if isinstance(knowledge.get("definitional"), dict) else []:
        for ingredient in definitional.get("ingredient") or []:
            if isinstance(ingredient, dict):
                ratios.append(ingredient.get("strengthRatio"))
    for ratio in ratios:
        if not isinstance(ratio, dict):
            continue
        numerator, denominator = ratio.get("numerator") or {}, ratio.get("denominator") or {}
        mg = mass_mg(numerator.get("value"), numerator.get("code") or numerator.get("unit"))
        per = as_number(denominator.get("value")) or 1.0
        if mg is not None and per > 0:
            return mg / per
    return None


def merged(resources: Iterable[Any]) -> list[dict[str, Any]]:
    """The resources of several modules or bundles side by side: one loaded twice counts once; two
    that share a type and id but differ would overwrite each other on any FHIR server, so refuse."""
    kept: dict[tuple[str, str], dict[str, Any]] = {}
    loose: list[dict[str, Any]] = []
    for resource in resources:
        if not isinstance(resource, dict):
            continue
        key = (resource.get("resourceType"), resource.get("id"))
        if not isinstance(key[0], str) or not isinstance(key[1], str):
            loose.append(resource)
        elif key not in kept:
            kept[key] = resource
        elif _canonical_json(kept[key]) != _canonical_json(resource):
            raise KnowledgeLoadError(f"two modules hold {key[0]}/{key[1]} with different content; "
                                     "module artifacts must have module-scoped ids")
    return [*kept.values(), *loose]


def _canonical_json(resource: dict[str, Any]) -> str:
    return json.dumps(resource, sort_keys=True, ensure_ascii=False)


def package_folder(path: str | Path) -> Path:
    """The folder of a FHIR package: `path` when it holds package.json, else its `package/`."""
    path = Path(path)
    for folder in (path, path / "package"):
        if (folder / "package.json").is_file():
            return folder
    raise KnowledgeLoadError(f"{path} is not a FHIR package folder (no package.json)")


class KnowledgeBase:
    """The knowledge, checked: KnowledgeCheckError (a KnowledgeLoadError) lists everything that
    would not run as written, and nothing of it serves. `allow_draft` lets draft artifacts serve."""

    def __init__(self, resources: Iterable[dict[str, Any]], *, allow_draft: bool = False) -> None:
        self.resources = merged(resources)
        self.findings = check_knowledge(self.resources, allow_draft=allow_draft)
        if errors(self.findings):
            raise KnowledgeCheckError(self.findings)
        by_type: dict[str, list[dict[str, Any]]] = {}
        for resource in self.resources:
            by_type.setdefault(resource.get("resourceType", ""), []).append(resource)
        self.plan_definitions = [pd for pd in by_type.get("PlanDefinition", []) if is_eca_rule(pd)]
        if not self.plan_definitions:
            raise KnowledgeLoadError("the knowledge holds no eca-rule PlanDefinition")
        self.valuesets = ValueSetIndex(by_type.get("ValueSet", []))
        self.activity_definitions = {ad.get("url"): ad for ad in by_type.get("ActivityDefinition", []) if ad.get("url")}
        self.products: list[Product] = []
        for knowledge in by_type.get("MedicationKnowledge", []):
            strength = strength_mg(knowledge)
            if strength is None:
                continue
            names = _names(knowledge)
            for index, (system, code, display) in enumerate(codings(knowledge.get("code"))):
                text = display or (knowledge.get("code") or {}).get("text", "")
                self.products.append(Product(system, code, text, strength, index == 0, names))
        self._code_systems = {cs["url"]: cs for cs in by_type.get("CodeSystem", []) if isinstance(cs.get("url"), str)}
        self._libraries = by_type.get("Library", [])
        self._modules: dict[int, ModuleInfo] = {}
        # The actions' variables and conditions compiled, once, for every request to share.
        self.actions = CompiledActions()
        # The monographs the artifacts carry (DocumentReference attachments), by their URL.
        self.monographs: dict[str, str] = {}
        for document in by_type.get("DocumentReference", []):
            for content in document.get("content") or []:
                attachment = content.get("attachment") if isinstance(content, dict) else None
                if isinstance(attachment, dict) and attachment.get("url") and attachment.get("data"):
                    try:
                        self.monographs[attachment["url"]] = base64.b64decode(attachment["data"]).decode("utf-8")
                    except (ValueError, UnicodeDecodeError):
                        continue
        # Value sets by id too: a hand-written expression may name one by id instead of canonical URL.
        self._valueset_urls = {vs["id"]: vs["url"] for vs in by_type.get("ValueSet", [])
                               if isinstance(vs.get("id"), str) and isinstance(vs.get("url"), str)}
        # The concepts each ValueSet lists (system, code, display), read once for every lookup.
        self._listed: dict[str, list[tuple[str, str, str | None]]] = {}
        for valueset in by_type.get("ValueSet", []):
            for include in (valueset.get("compose") or {}).get("include") or []:
                for concept in include.get("concept") or []:
                    self._listed.setdefault(valueset.get("url", ""), []).append(
                        (include.get("system", ""), concept.get("code", ""), concept.get("display")))
        self._displays = {(system, code): display for listed in self._listed.values()
                          for system, code, display in listed if display}
        self._codes: dict[str, frozenset[tuple[str, str]]] = {}
        # Charts repeat the same drugs and diagnoses: a concept's membership is worked out once.
        self._matched: dict[tuple[str, Any], tuple[str, str] | None] = {}
        self._drugs: dict[MedicationConcepts, MedicationConcepts] = {}
        self._drug_matches: dict[tuple[str, MedicationConcepts], dict[str, Any] | None] = {}
        self._serialised: dict[int, tuple[Any, bytes]] = {}

    def fresh_copy(self, value: Any) -> Any:
        """A copy of a part of the knowledge (JSON) for a request to fill in: the part, copied once
        (json_copy: nothing shared inside it) and serialised, is read back each time, several
        times faster than copying it item by item. The knowledge does not change once loaded."""
        found = self._serialised.get(id(value))
        if found is None or found[0] is not value:  # the part held with its bytes: its id is not reused
            found = self._serialised[id(value)] = (value, pickle.dumps(json_copy(value), pickle.HIGHEST_PROTOCOL))
        return pickle.loads(found[1])

    @staticmethod
    def bundle_resources(bundle: Any, source: str = "the knowledge file") -> list[dict[str, Any]]:
        """The resources of a knowledge Bundle."""
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise KnowledgeLoadError(f"{source} is not a FHIR Bundle")
        return [entry.get("resource") for entry in bundle.get("entry") or [] if isinstance(entry, dict)]

    @classmethod
    def read_bundle_file(cls, path: str | Path) -> list[dict[str, Any]]:
        """The resources of an exported knowledge Bundle file."""
        try:
            bundle = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise KnowledgeLoadError(f"{path}: cannot read the knowledge bundle: {error}") from error
        return cls.bundle_resources(bundle, str(path))

    @staticmethod
    def read_package(path: str | Path) -> list[dict[str, Any]]:
        """The resources of a FHIR package folder (`package/` with its package.json, or the folder
        holding it): every resource file but the manifest and index."""
        folder = package_folder(path)
        resources = []
        for file in sorted(folder.glob("*.json")):
            if file.name in ("package.json", ".index.json"):
                continue
            try:
                resources.append(json.loads(file.read_text(encoding="utf-8")))
            except (OSError, ValueError) as error:
                raise KnowledgeLoadError(f"{file}: cannot read the package's resource: {error}") from error
        return resources

    @classmethod
    def from_bundle(cls, bundle: dict[str, Any], *, allow_draft: bool = False) -> "KnowledgeBase":
        return cls(cls.bundle_resources(bundle), allow_draft=allow_draft)

    @classmethod
    def from_file(cls, path: str | Path, *, allow_draft: bool = False) -> "KnowledgeBase":
        return cls(cls.read_bundle_file(path), allow_draft=allow_draft)

    def valueset_url(self, vs: str) -> str:
        """A value set named by canonical URL, or by the id of a ValueSet of the knowledge."""
        return vs if "/" in vs else self._valueset_urls.get(vs, vs)

    def module_of(self, plan: dict[str, Any]) -> ModuleInfo:
        """The module of a PlanDefinition: the manifest Library that lists it (else the plan itself)
        names it, the plan gives the version, its own dependency the override reasons."""
        key = id(plan)
        if key not in self._modules:
            url, version = plan.get("url"), plan.get("version") or ""
            listed = {f"{url}|{version}", url}
            library = next((lib for lib in self._libraries
                            if any(isinstance(a, dict) and a.get("resource") in listed for a in lib.get("relatedArtifact") or [])),
                           None)
            label = (library or plan).get("title") or (library or plan).get("name") or ModuleInfo.unknown().label
            self._modules[key] = ModuleInfo(str(label), str(version), tuple(self._override_reasons(plan)))
        return self._modules[key]

    def _override_reasons(self, plan: dict[str, Any]) -> list[dict[str, str]]:
        reasons = []
        for artifact in plan.get("relatedArtifact") or []:
            if not isinstance(artifact, dict) or artifact.get("type") != "depends-on" \
                    or artifact.get("label") != OVERRIDE_REASONS_LABEL:
                continue
            system = self._code_systems.get(str(artifact.get("resource", "")).split("|", 1)[0])
            for concept in (system or {}).get("concept") or []:
                if isinstance(concept, dict) and isinstance(concept.get("code"), str):
                    reasons.append({"system": system["url"], "code": concept["code"],
                                    "display": concept.get("display", concept["code"])})
        return reasons

    def codes(self, vs: str) -> frozenset[tuple[str, str]]:
        """The codes a value set lists (for searching observations by code)."""
        found = self._codes.get(vs)
        if found is None:
            found = frozenset((system, code) for system, code, _ in self._listed.get(self.valueset_url(vs), ()))
            if len(self._codes) < _MATCH_MEMO_LIMIT:  # the knowledge's own value sets, not every text a request names
                self._codes[vs] = found
        return found

    def display_of(self, system: str, code: str) -> str | None:
        """The display a value set of the knowledge gives a code (for a chart that sends none)."""
        return self._displays.get((system, code))

    def display_names(self, vs: str) -> frozenset[str]:
        """The normalised displays of the concepts a value set lists (to read a text-only answer)."""
        return frozenset(normalise_name(display) for _, _, display in self._listed.get(self.valueset_url(vs), ())
                         if display)

    def match(self, vs: str, concepts: Any, key: Any = None) -> tuple[str, str] | None:
        """(how, what) when the concepts are in the value set: by code, ingredient or name.
        `key`, when given, is a hashable stand-in for the concepts (same key, same answer)."""
        key = key if key is not None else concept_key(concepts)
        if key is None:
            return self._match(vs, concepts)
        try:
            return self._matched[(vs, key)]
        except KeyError:
            return self._remember(vs, key, concepts)

    def match_by_key(self, vs: str, key: Any, concepts: Callable[[], Any]) -> tuple[str, str] | None:
        """`match(vs, concepts(), key)`, the concepts made only when the key is not remembered."""
        try:
            return self._matched[(vs, key)]
        except KeyError:
            return self._remember(vs, key, concepts())

    def _remember(self, vs: str, key: Any, concepts: Any) -> tuple[str, str] | None:
        if len(self._matched) > _MATCH_MEMO_LIMIT:
            self._matched.clear()  # bounded memory whatever the traffic
        found = self._matched[(vs, key)] = self._match(vs, concepts)
        return found

    def drug(self, concepts: MedicationConcepts) -> MedicationConcepts:
        """The one object standing for this drug across requests: the memos below then find it by
        identity instead of comparing its codes each time."""
        found = self._drugs.get(concepts)
        if found is None:
            if len(self._drugs) > _MATCH_MEMO_LIMIT:
                self._drugs.clear()  # bounded memory whatever the traffic
            found = self._drugs[concepts] = concepts
        return found

    def drug_match(self, vs: str, concepts: MedicationConcepts) -> dict[str, Any] | None:
        """How the drug is in the value set, as a fact reads it ({how, text, name}), or None;
        shared by every request (readers must not change it)."""
        key = (vs, concepts)
        try:
            return self._drug_matches[key]
        except KeyError:
            pass
        found = self._match(vs, concepts)  # kept here alone, as the fact: not in _matched as well
        fact = None if found is None else {"how": found[0], "text": found[1], "name": drug_name(concepts)}
        if len(self._drug_matches) > _MATCH_MEMO_LIMIT:
            self._drug_matches.clear()
        self._drug_matches[key] = fact
        return fact

    def _match(self, vs: str, concepts: Any) -> tuple[str, str] | None:
        found = self.valuesets.match(self.valueset_url(vs), concepts)
        if found is None:
            return None
        if found.how == "name":
            return "name", found.name or ""
        coding = found.coding or ("", "", None)
        return found.how, coding[2] or coding[1]

    def contains(self, vs: str, system: str, code: str) -> bool:
        return self.valuesets.contains(self.valueset_url(vs), system, code)

    def product_of(self, concepts: MedicationConcepts) -> Product | None:
        """The product (with its strength) that the medication's own codes name, if any."""
        for system, code, _ in concepts.codings:
            for product in self.products:
                if product.system == system and normalise_code(system, product.code) == normalise_code(system, code):
                    return product
        return None

    def strength_mg(self, concepts: MedicationConcepts) -> float | None:
        product = self.product_of(concepts)
        return product.strength_mg if product else None

    def product_for_dose(self, candidates: Iterable[Product], dose_mg: float, like: str = "") -> Product | None:
        """The product to give a dose with, capsules whole: one of that strength, else the
        strongest whose strength divides the dose (60 mg: three 20 mg capsules). Of several such
        products, the one described most like `like` (the ordered product, or the order's text): a
        plain capsule is not swapped for a sprinkle capsule of the same strength, nor the reverse."""
        candidates = [p for p in candidates if p.strength_mg > 0]
        exact = [p for p in candidates if abs(p.strength_mg - dose_mg) < 1e-9]
        if exact:
            pool = [p for p in exact if p.primary] or exact
        else:
            dividing = [p for p in candidates
                        if p.primary and abs(round(dose_mg / p.strength_mg) * p.strength_mg - dose_mg) < 1e-9]
            strongest = max((p.strength_mg for p in dividing), default=None)
            pool = [p for p in dividing if p.strength_mg == strongest]
        # max() keeps the first of equals: without a description, the knowledge's order decides.
        return max(pool, key=lambda p: _likeness(p.display, like), default=None)

    def products_like(self, product: Product) -> list[Product]:
        """The products of the same drug and code system as this one."""
        return [p for p in self.products if p.system == product.system and (set(p.names) & set(product.names)
                                                                            or not product.names)]

    def products_named(self, texts: Iterable[str]) -> list[Product]:
        """Main-coding products whose drug a text names (for orders written as text only)."""
        texts = list(texts)
        return [p for p in self.products if p.primary and any(name_matches(n, t) for n in p.names for t in texts)]

    def plan_definitions_for(self, hook: str) -> list[dict[str, Any]]:
        return [pd for pd in self.plan_definitions if hook in hooks_of(pd)]


_MATCH_MEMO_LIMIT = 100_000
_STRENGTH = re.compile(r"\d+(?:\.\d+)?\s*(?:mg|mcg|g)\b", re.IGNORECASE)


def _words(text: str) -> set[str]:
    """The words of a product description, its strengths left out."""
    return set(re.findall(r"[a-z]+", _STRENGTH.sub(" ", text.lower())))


def _likeness(display: str, like: str) -> float:
    """How much of a product's description (strength aside) another description shares."""
    words = _words(display)
    return len(words & _words(like)) / len(words) if words else 0.0


def drug_name(concepts: MedicationConcepts) -> str:
    """What a card calls a drug: its first coding's display, else its first name, else a code."""
    for _, _, display in concepts.codings:
        if display:
            return display
    if concepts.names:
        return concepts.names[0]
    return next((f"{system}|{code}" for system, code, _ in concepts.codings), "unnamed medication")


def concept_key(concepts: Any) -> Any:
    """What a match depends on, hashable: a MedicationConcepts, or a CodeableConcept's codings and
    text; None for anything else (matched without the memo)."""
    if isinstance(concepts, MedicationConcepts):
        return concepts
    if isinstance(concepts, dict) and ("coding" in concepts or "text" in concepts):
        return ("concept", tuple(codings(concepts)), as_str(concepts.get("text")))
    return None


def hooks_of(pd: dict[str, Any]) -> list[str]:
    """The named events that trigger the PlanDefinition's top-level actions."""
    return list(dict.fromkeys(
        trigger.get("name")
        for action in pd.get("action") or []
        for trigger in action.get("trigger") or []
        if trigger.get("type") == "named-event" and trigger.get("name")
    ))
