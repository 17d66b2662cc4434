"""What the card preview page (`/`) shows, read from the served knowledge and nothing else.

- `modules(engine, case_index)`: each served module (its manifest Library) with its services, the
  choices of the page's form (its products, and the concepts of its value sets grouped by what they
  code: conditions, medications, observations, routes) and its examples (the module's own cases).
- `CaseIndex`: the examples, the module folders' test cases, listed once, read on demand with their
  dates resolved for today.
- `hook_requests(engine, case, today)`: a chart and draft orders turned into the request an EHR
  sends each service of the hook (prefetch answered from the chart per the service's templates),
  the same code the modules' self-test uses.

The page itself (static/preview/) is drug-agnostic: every drug, product and code it offers comes
from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from fhir_module.engine.clinical._json import codings
from fhir_module.engine.knowledgebase import strength_mg
from fhir_module.knowledge.modules import builtin_module_dirs, case_files, module_dir
from fhir_module.selftest import Scenario, ScenarioError, build_request, parse_scenario

# What a value set's concepts code, by the code systems it draws on (FHIR terminology, not a drug).
LOINC = "http://loinc.org"
MEDICATION_SYSTEMS = ("http://www.nlm.nih.gov/research/umls/rxnorm", "http://hl7.org/fhir/sid/ndc")
ROUTE_SYSTEMS = ("http://terminology.hl7.org/CodeSystem/v2-0162", "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration")
CONDITION_SYSTEMS = ("http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10")
KINDS = ("condition", "medication", "observation", "route")


def _canonical(url: Any) -> str:
    return str(url or "").split("|", 1)[0]


def valueset_kind(valueset: dict[str, Any]) -> str | None:
    """What a value set lists, read from its code systems: a route set may also hold a SNOMED
    route concept, so any route system makes it a route set."""
    systems = {include.get("system") for include in (valueset.get("compose") or {}).get("include") or []
               if isinstance(include, dict) and include.get("system")}
    if not systems:
        return None
    if systems & set(ROUTE_SYSTEMS):
        return "route"
    if systems <= {LOINC}:
        return "observation"
    if systems <= set(MEDICATION_SYSTEMS):
        return "medication"
    if systems <= set(CONDITION_SYSTEMS):
        return "condition"
    return None


def valueset_choices(valueset: dict[str, Any]) -> dict[str, Any]:
    """A value set as a group of choices: its title and the concepts it lists (a filter, such as
    an ICD-10-CM chapter, cannot be listed: its listed concepts stand for it)."""
    concepts = []
    for include in (valueset.get("compose") or {}).get("include") or []:
        for concept in include.get("concept") or [] if isinstance(include, dict) else []:
            if isinstance(concept, dict) and concept.get("code"):
                concepts.append({"system": include.get("system", ""), "code": concept["code"],
                                 "display": concept.get("display") or concept["code"]})
    return {"url": valueset.get("url", ""), "title": valueset.get("title") or valueset.get("name") or valueset.get("id", ""),
            "concepts": concepts}


def product_choice(knowledge: dict[str, Any]) -> dict[str, Any] | None:
    """A product the form can order: its first coding and its strength per unit (capsule, tablet)."""
    strength = strength_mg(knowledge)
    found = codings(knowledge.get("code"))
    if strength is None or not found:
        return None
    system, code, display = found[0]
    return {"system": system, "code": code, "display": display or (knowledge.get("code") or {}).get("text") or code,
            "strengthMg": strength, "doseForm": (knowledge.get("doseForm") or {}).get("text", "")}


@dataclass
class _Module:
    name: str
    title: str
    version: str
    listed: set[str]  # canonical URLs
    typed_ids: set[str]  # the "Type/id" ending of each listed address


def _manifests(resources: list[dict[str, Any]]) -> list[_Module]:
    """The modules: each manifest Library and the canonical URLs it is composed of."""
    found = []
    for library in resources:
        if library.get("resourceType") != "Library":
            continue
        listed = {_canonical(a.get("resource")) for a in library.get("relatedArtifact") or []
                  if isinstance(a, dict) and a.get("type") == "composed-of"}
        if listed:
            found.append(_Module(str(library.get("id") or library.get("name")), str(library.get("title") or library.get("name")),
                                 str(library.get("version") or ""), listed, {"/".join(url.split("/")[-2:]) for url in listed}))
    return found


def _listed_in(resource: dict[str, Any], manifest: _Module) -> bool:
    """Whether the manifest lists the resource: by canonical URL, or (a resource without one, such
    as a MedicationKnowledge) by an address ending in its Type/id."""
    if resource.get("url"):
        return _canonical(resource["url"]) in manifest.listed
    return f"{resource.get('resourceType')}/{resource.get('id')}" in manifest.typed_ids


def modules(engine: Any, cases: "CaseIndex") -> list[dict[str, Any]]:
    """Every served module with its services, form choices and examples (see the module doc)."""
    resources = engine.kb.resources
    manifests = _manifests(resources)
    # Knowledge without a manifest (a hand-made bundle) is one module holding everything.
    if not manifests:
        manifests = [_Module("knowledge", "Served knowledge", "", {_canonical(r.get("url")) for r in resources},
                             {f"{r.get('resourceType')}/{r.get('id')}" for r in resources})]
    # Services no manifest lists (knowledge from several hand-made sources) still get a module.
    listed = set().union(*(m.listed for m in manifests))
    if any(_canonical((engine.plan(s["id"]) or {}).get("url")) not in listed for s in engine.services()):
        manifests.append(_Module("other", "Other served knowledge", "", {_canonical(r.get("url")) for r in resources}
                                 - listed, set()))
    answer = []
    for manifest in manifests:
        mine = [r for r in resources if _listed_in(r, manifest)]
        services = [{"id": s["id"], "hook": s["hook"], "title": s["title"]} for s in engine.services()
                    if _canonical((engine.plan(s["id"]) or {}).get("url")) in manifest.listed]
        if not services:
            continue
        choices: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        for valueset in (r for r in mine if r.get("resourceType") == "ValueSet"):
            kind = valueset_kind(valueset)
            group = valueset_choices(valueset)
            if kind and group["concepts"]:
                choices[kind].append(group)
        products = sorted((p for p in (product_choice(r) for r in mine if r.get("resourceType") == "MedicationKnowledge") if p),
                          key=lambda p: (p["strengthMg"], p["display"]))
        answer.append({"name": manifest.name, "title": manifest.title, "version": manifest.version,
                       "services": services, "products": products, "valueSets": choices,
                       "examples": cases.listing(manifest.name)})
    return answer


class CaseIndex:
    """The module folders' test cases, listed by module name (the folder's name) once; a case is
    read again when asked for, so its dates are today's."""

    def __init__(self, folders: list[Path]) -> None:
        self._cases: dict[str, dict[str, tuple[Path, dict[str, str]]]] = {}
        for folder in folders:
            for path in case_files(folder):
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue  # a broken case is the self-test's to report, not the page's
                if not isinstance(data, dict) or not isinstance(data.get("id"), str):
                    continue
                group = path.parent.relative_to(folder / "cases").as_posix() if path.parent != folder / "cases" else ""
                expected = (data.get("expect") or {}).get("cards") if isinstance(data.get("expect"), dict) else None
                entry = {"id": data["id"], "description": str(data.get("description", "")), "hook": str(data.get("hook", "")),
                         "group": group, "expectedCards": len(expected) if isinstance(expected, list) else 0}
                self._cases.setdefault(folder.name, {}).setdefault(data["id"], (path, entry))

    @classmethod
    def for_settings(cls, settings: Any) -> "CaseIndex":
        """The cases of the served module folders (the built-in ones when nothing is named; a
        bundle carries no cases)."""
        if settings.module_paths:
            return cls([module_dir(p) for p in settings.module_paths])
        return cls([] if settings.bundle_paths else builtin_module_dirs())

    def listing(self, module: str) -> list[dict[str, str]]:
        return [entry for _, entry in self._cases.get(module, {}).values()]

    def case(self, module: str, case_id: str, today: date) -> Scenario | None:
        found = self._cases.get(module, {}).get(case_id)
        if found is None:
            return None
        return parse_scenario(json.loads(found[0].read_text(encoding="utf-8")), today, found[0])


def chart_case(body: Any, today: date) -> Scenario:
    """The page's chart (hook, patientId, record, draftOrders, selections) as a case with nothing
    expected; ScenarioError says what is wrong with it."""
    if not isinstance(body, dict):
        raise ScenarioError("the chart is a JSON object with hook, patientId, record and draftOrders")
    return parse_scenario({"id": "preview", **body, "expect": {"cards": []}}, today)


def case_document(case: Scenario) -> dict[str, Any]:
    """A case as the page's chart (what `chart_case` reads back)."""
    return {"id": case.id, "description": case.description, "hook": case.hook, "patientId": case.patient_id,
            "record": case.record, "draftOrders": case.draft_orders, "selections": case.selections}


def hook_requests(engine: Any, case: Scenario, today: date) -> list[dict[str, Any]]:
    """The request an EHR sends each service of the case's hook, prefetch answered from its chart."""
    return [{"service": service["id"], "title": service["title"],
             "request": build_request(case, service, fhir_server=None, prefetch=True, today=today)}
            for service in engine.services() if service["hook"] == case.hook]
