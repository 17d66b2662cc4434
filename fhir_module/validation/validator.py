"""The validation pipeline: JSON, schema, model and profile layers over a resource or a bundle.

Every layer reports into one list of issues, located with FHIRPath from the root of what was given
(`Bundle.entry[3].resource.action[0]...`). Later layers see only what earlier ones could read: content
that is not FHIR JSON stops at layer 1, and the model layer runs when the schema found no error (its
findings would repeat the schema's). The schema and profile layers check each resource nested in a
bundle, a `contained` list or a Parameters on its own, against its own type and profiles.
"""

from __future__ import annotations

from typing import Any, Callable

from fhir_module.validation import model, wellformed
from fhir_module.validation.conformance import Walker
from fhir_module.validation.definitions import definitions
from fhir_module.validation.invariants import Answers
from fhir_module.validation.knowledge import is_knowledge, knowledge_issues
from fhir_module.validation.outcome import MODEL, PROFILE, Issue, fhirpath_location, to_outcome
from fhir_module.validation.schema import fhir_schema
from fhir_module.validation.terminology import Terminology

VERSIONS = {"R4": "R4", "4.0": "R4", "4.0.1": "R4", "R5": "R5", "5.0": "R5", "5.0.0": "R5"}


def validate(
    data: dict | str | bytes,
    *,
    fhir_version: str | None = None,
    profiles: list[str] | None = None,
    allow_draft: bool = False,
    model_beside: bool = False,
) -> dict[str, Any]:
    """Validate a FHIR resource or bundle (dict, JSON text or bytes); returns an R4 OperationOutcome.

    `fhir_version` is "R4" or "R5"; by default R5 when a resource type exists only in R5, else R4.
    `profiles` are canonical URLs to check each resource of their type against, in addition to the
    profiles its `meta.profile` declares. A bundle of knowledge (eca-rule PlanDefinitions) also
    gets the engine's knowledge check (layer "knowledge"); `allow_draft` as `serve --allow-draft`.
    `model_beside`: the model layer in a forked process while the later layers run here (the
    `validate` command, for one file: see model.check_beside); the same issues either way.
    """
    resource, issues = wellformed.parse(data)
    if resource is None:
        return to_outcome(issues)
    issues += wellformed.representation_issues(resource)
    nested = _resources(resource)
    version = VERSIONS.get((fhir_version or "").upper() or _detect_version(nested))
    if version is None:
        issues.append(Issue("fatal", "not-supported", f"Unsupported FHIR version {fhir_version!r} (use R4 or R5)", None, "json"))
        return to_outcome(issues)

    schema = fhir_schema(version)
    for location, res in nested:
        issues += schema.check(res, location)
    model_issues: Callable[[], list[Issue]] = list
    if any(i.severity in ("error", "fatal") for i in issues):
        issues.append(Issue("information", "informational", "Model checks not run: fix the schema errors first", None, MODEL))
    elif model_beside:
        model_issues = model.check_beside(resource, version)
    else:
        issues += model.check(resource, version)
    later = _profile_layer(nested, version, profiles or [], answers={})
    later += _knowledge_layer(resource, allow_draft)
    return to_outcome(issues + model_issues() + later)


def _knowledge_layer(resource: dict[str, Any], allow_draft: bool) -> list[Issue]:
    """The knowledge check over a bundle's entries (a lone resource is no knowledge to run)."""
    if resource.get("resourceType") != "Bundle" or not isinstance(resource.get("entry"), list):
        return []
    located = [(f"Bundle.entry[{i}].resource", entry["resource"]) for i, entry in enumerate(resource["entry"])
               if isinstance(entry, dict) and isinstance(entry.get("resource"), dict)]
    if not is_knowledge([r for _, r in located]):
        return []
    return [issue for _, issue in knowledge_issues(located, allow_draft=allow_draft)]


def _detect_version(nested: list[tuple[str, dict[str, Any]]]) -> str:
    r4 = fhir_schema("R4").resource_types
    for _, res in nested:
        rtype = res.get("resourceType")
        # R5's schema is read only for a type R4 lacks (reading it is ~30 ms).
        if rtype not in r4 and rtype in fhir_schema("R5").resource_types:
            return "R5"
    return "R4"


def _resources(resource: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The resource and every resource nested in it (depth first, in document order), with their
    FHIRPath locations."""
    root = resource["resourceType"]
    found = [(root, resource)]
    path: list[str | int] = []  # of the value being walked, extended and cut back as the walk goes

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if path and isinstance(value.get("resourceType"), str):
                found.append((fhirpath_location(root, path), value))
            for key, item in value.items():
                if isinstance(item, (dict, list)):
                    path.append(key)
                    walk(item)
                    path.pop()
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, (dict, list)):
                    path.append(i)
                    walk(item)
                    path.pop()

    walk(resource)
    return found


def _profile_layer(nested: list[tuple[str, dict[str, Any]]], version: str, explicit: list[str],
                   answers: Answers | None) -> list[Issue]:
    """`answers`: the invariant answers the walkers share (invariants.evaluate); None for none."""
    defs = definitions()
    issues: list[Issue] = []
    for url in explicit:
        if defs.get(url) is None:
            issues.append(Issue("error", "not-found", f"Unknown profile {url}", None, PROFILE))
    explicit = [u for u in explicit if defs.get(u) is not None]
    if version != "R4":
        declared = explicit or [p for _, r in nested for p in _meta_profiles(r)]
        if declared:
            issues.append(Issue("information", "not-supported", "The module's profiles are R4: profile conformance is not checked for R5 content", None, PROFILE))
        return issues

    terminology = Terminology(r for _, r in nested if r.get("resourceType") in ("ValueSet", "CodeSystem"))
    full_urls = _full_urls(nested[0][1])
    matched: set[str] = set()
    for location, res in nested:
        rtype = res.get("resourceType")
        indexes = []
        for url in explicit:
            if defs.type_of_profile(url) == rtype:
                indexes.append(defs.get(url))
                matched.add(url)
        for url in _meta_profiles(res):
            index = defs.get(url)
            if index is None:
                issues.append(Issue("warning", "not-found", f"Profile {url} is not known here: not checked", f"{location}.meta.profile", PROFILE))
            elif index.type != rtype:
                issues.append(Issue("error", "structure", f"Profile {url} is for {index.type}, not {rtype}", f"{location}.meta.profile", PROFILE))
            else:
                indexes.append(index)
        if not indexes:  # the profiles hold the base rules; without one, check against the core definition
            base = defs.base(rtype) if isinstance(rtype, str) else None
            indexes = [base] if base is not None else []
        for index in dict.fromkeys(indexes):
            try:
                issues += Walker(defs, terminology, res, location, full_urls, answers).check(index)
            except Exception as exc:  # noqa: BLE001 - a validator bug must be reported, not crash the caller
                issues.append(Issue("error", "exception", f"Profile check against {index.url} failed: {type(exc).__name__}: {exc}", location, PROFILE))
    for url in explicit:
        if url not in matched:
            issues.append(Issue("warning", "not-found", f"Profile {url} applies to {defs.type_of_profile(url)}; no such resource here", None, PROFILE))
    return issues


def _meta_profiles(resource: dict[str, Any]) -> list[str]:
    meta = resource.get("meta")
    profiles = meta.get("profile") if isinstance(meta, dict) else None
    return [p for p in profiles if isinstance(p, str)] if isinstance(profiles, list) else []


def _full_urls(root: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    if root.get("resourceType") == "Bundle" and isinstance(root.get("entry"), list):
        for entry in root["entry"]:
            if isinstance(entry, dict) and isinstance(entry.get("fullUrl"), str) and isinstance(entry.get("resource"), dict):
                rtype = entry["resource"].get("resourceType")
                if isinstance(rtype, str):
                    out[entry["fullUrl"]] = rtype
    return out
