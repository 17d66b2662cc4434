"""Layer 4: conformance of one resource to a StructureDefinition snapshot (a profile or the core base).

The walker follows the snapshot over the instance: for each element definition it counts the values
(cardinality), checks choice types allowed by the definition, reference targets, fixed and pattern
values, slices (value and pattern discriminators, e.g. extensions by url and codings by pattern),
required bindings, and the element's FHIRPath invariants. Where the snapshot does not go below an element,
the walk continues with the core definition of the element's data type (or the extension's own
definition), so datatype rules apply everywhere. Resources nested in the instance (Bundle entries,
contained) are not walked here: the validator checks each one on its own against its own profiles.
"""

from __future__ import annotations

from typing import Any, Iterator

from fhir_module.validation import invariants
from fhir_module.validation.definitions import PRIMITIVES, Definitions, StructureIndex
from fhir_module.validation.outcome import INVARIANT, PROFILE, TERMINOLOGY, Issue
from fhir_module.validation.terminology import Terminology

Item = tuple[str, Any, "str | None"]  # (FHIRPath location, JSON value or None for a bare `_x`, type code)


def _prefixed(element: dict[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    for key, value in element.items():
        if key.startswith(prefix) and len(key) > len(prefix) and key[len(prefix)].isupper():
            yield key, value


def matches_pattern(value: Any, pattern: Any) -> bool:
    """FHIR pattern semantics: every element of the pattern is present with the same value; for arrays,
    each pattern item matches some instance item."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and matches_pattern(value[k], v) for k, v in pattern.items())
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else [value]
        return all(any(matches_pattern(item, p) for item in items) for p in pattern)
    return value == pattern


class Walker:
    """Checks one resource against one StructureDefinition and collects the issues."""

    def __init__(
        self,
        defs: Definitions,
        terminology: Terminology,
        resource: dict[str, Any],
        location: str,
        full_urls: dict[str, str],
        answers: invariants.Answers | None = None,
    ) -> None:
        self.defs = defs
        self.terminology = terminology
        self.resource = resource
        self.location = location
        self.full_urls = full_urls  # Bundle fullUrl -> resource type, to check reference targets
        self.issues: list[Issue] = []
        self._evaluated: set[tuple[str, int]] = set()
        self._source: str | None = None
        self._answers = answers  # invariant answers shared by the walkers of one validation
        self._texts: dict[int, bytes] = {}  # the JSON text of values of the resource, by id (it holds them)

    def check(self, index: StructureIndex) -> list[Issue]:
        self._source = index.url if index.is_profile else None
        self._element(index, index.root, self.resource, self.location, index.type, descend=False)
        self._children(index, index.root["id"], self.resource, self.location)
        return self.issues

    # -- reporting -------------------------------------------------------------------------------
    def _add(self, severity: str, code: str, message: str, where: str, layer: str = PROFILE, source: str | None = None) -> None:
        self.issues.append(Issue(severity, code, message, where, layer, source or self._source))

    # -- elements --------------------------------------------------------------------------------
    def _children(self, index: StructureIndex, element_id: str, node: dict[str, Any], where: str) -> None:
        table = index.table(element_id)
        found = self._keys_by_child(table, node, where)
        for child in table.children:
            keys = found.get(child["id"])
            if keys is None and child["id"] not in table.always:
                continue
            name = child["path"].rpartition(".")[2]
            at = f"{where}.{name.removesuffix('[x]')}"
            items = [item for key, type_code in keys or () for item in self._items(node, key, at, type_code)]
            self._cardinality(child, len(items), at, name)
            slices = index.slices.get(child["id"])
            if child.get("slicing") and slices:
                self._slicing(index, child, slices, items, at)
            for item_where, value, type_code in items:
                if value is not None:
                    self._element(index, child, value, item_where, type_code)

    def _keys_by_child(self, table: Any, node: dict[str, Any], where: str) -> dict[str, list[tuple[str, str | None]]]:
        """Which child definition each instance key belongs to (`_x` primitive extensions go with `x`),
        with the key's data type; a choice key of a type the definition does not allow is reported."""
        found: dict[str, list[tuple[str, str | None]]] = {}
        for key in node:
            bare = key[1:] if key.startswith("_") else key
            child = table.by_name.get(bare)
            if child is not None:
                types = child.get("type", ())
                entry = (bare, types[0].get("code") if len(types) == 1 else None)
            else:
                entry = None
                for prefix, choice in table.choices:
                    if not bare.startswith(prefix) or bare == prefix:
                        continue
                    suffix = bare[len(prefix):]
                    type_code = suffix if suffix in self.defs.type_names else suffix[0].lower() + suffix[1:]
                    if type_code not in self.defs.type_names:
                        continue
                    allowed = {t.get("code") for t in choice.get("type", ())}
                    if type_code not in allowed:
                        self._add("error", "structure", f"Type {type_code} is not allowed for {prefix}[x] (allowed: {', '.join(sorted(allowed))})", f"{where}.{prefix}")
                        break
                    child, entry = choice, (bare, type_code)
                    break
            if child is not None and entry is not None:
                keys = found.setdefault(child["id"], [])
                if entry not in keys:
                    keys.append(entry)
        return found

    @staticmethod
    def _items(node: dict[str, Any], key: str, where: str, type_code: str | None) -> Iterator[Item]:
        value, extra = node.get(key), node.get("_" + key)
        if value is None and extra is None:
            return
        if isinstance(value, list) or isinstance(extra, list):
            values = value if isinstance(value, list) else []
            extras = extra if isinstance(extra, list) else []
            for i in range(max(len(values), len(extras))):
                v = values[i] if i < len(values) else None
                if v is not None or (i < len(extras) and extras[i] is not None):
                    yield f"{where}[{i}]", v, type_code
        else:
            yield where, value, type_code

    def _cardinality(self, element: dict[str, Any], count: int, where: str, name: str) -> None:
        minimum = element.get("min", 0) or 0
        maximum = element.get("max", "*")
        if count < minimum:
            self._add("error", "required", f"Element '{name}' is required: minimum cardinality {minimum}, found {count}", where)
        if maximum != "*" and maximum is not None and count > int(maximum):
            if int(maximum) == 0:
                self._add("error", "structure", f"Element '{name}' is not allowed here", where)
            else:
                self._add("error", "structure", f"Element '{name}' allows at most {maximum}, found {count}", where)

    def _element(self, index: StructureIndex, element: dict[str, Any], value: Any, where: str, type_code: str | None, descend: bool = True) -> None:
        """Checks one value against its element definition, then walks into it."""
        facets = index.facets(element)
        for key, fixed in facets.fixed:
            if value != fixed:
                self._add("error", "value", f"Value must be exactly {_show(fixed)} (fixed by the profile), found {_show(value)}", where)
        for key, pattern in facets.patterns:
            if not matches_pattern(value, pattern):
                self._add("error", "value", f"Value must match the pattern {_show(pattern)}, found {_show(value)}", where)
        binding = element.get("binding")
        if binding and binding.get("strength") == "required" and binding.get("valueSet"):
            self._binding(binding["valueSet"], value, where, type_code)
        if type_code in ("Coding", "CodeableConcept") and isinstance(value, dict):
            self._local_code_systems(value, where, type_code)
        if type_code == "Reference" and isinstance(value, dict):
            self._reference_target(element, type_code, value, where)
        if facets.constraints:  # with a recursive element's (contentReference), those of the element it repeats
            type_path = type_code if type_code and type_code not in ("BackboneElement", "Element") and element is not index.root else element["path"]
            self._constraints(facets.constraints, value, where, type_path)
        if descend and isinstance(value, dict) and "resourceType" not in value:
            self._descend(index, element, value, where, type_code)

    def _descend(self, index: StructureIndex, element: dict[str, Any], value: dict[str, Any], where: str, type_code: str | None) -> None:
        ref = element.get("contentReference")
        if ref:
            self._children(index, ref.partition("#")[2], value, where)
            return
        if index.children.get(element["id"]):
            self._children(index, element["id"], value, where)
            return
        if not type_code or type_code in PRIMITIVES:
            return
        type_index = self._type_index(element, type_code, value)
        if type_index is None:
            return
        saved = self._source
        self._source = type_index.url if type_index.is_profile else saved
        self._constraints(type_index.facets(type_index.root).constraints, value, where, type_code)
        self._children(type_index, type_index.root["id"], value, where)
        self._source = saved

    def _type_index(self, element: dict[str, Any], type_code: str, value: dict[str, Any]) -> StructureIndex | None:
        for t in element.get("type", ()):
            if t.get("code") == type_code and t.get("profile"):
                index = self.defs.get(t["profile"][0])
                if index is not None:
                    return index
        if type_code == "Extension" and isinstance(value.get("url"), str):
            index = self.defs.get(value["url"])
            if index is not None:
                return index
        return self.defs.base(type_code)

    # -- invariants ------------------------------------------------------------------------------
    def _constraints(self, constraints: tuple[dict[str, Any], ...], value: Any, where: str, type_path: str) -> None:
        """`constraints`: as Facets.constraints holds them (with an expression, not checked natively)."""
        for constraint in constraints:
            key = constraint.get("key", "")
            expression = constraint["expression"]
            if (key, id(value)) in self._evaluated:
                continue
            self._evaluated.add((key, id(value)))
            ok = invariants.evaluate(expression, value, type_path, self.resource, self._answers, self._texts)
            if isinstance(ok, Exception):
                self._add("information", "informational", f"Invariant {key} not checked: fhirpathpy cannot evaluate {expression!r} ({type(ok).__name__})", where, INVARIANT, key)
            elif not ok:
                severity = "error" if constraint.get("severity") == "error" else "warning"
                if _best_practice(constraint):
                    severity = "information"
                self._add(severity, "invariant", f"Invariant {key} failed: {constraint.get('human', expression)}", where, INVARIANT, key)

    # -- terminology -----------------------------------------------------------------------------
    def _binding(self, value_set: str, value: Any, where: str, type_code: str | None) -> None:
        codings: list[tuple[str | None, str]] = []
        if type_code in ("code", "string", "uri") and isinstance(value, str):
            codings = [(None, value)]
        elif type_code in ("Coding", "Quantity") and isinstance(value, dict):
            if isinstance(value.get("code"), str):
                codings = [(value.get("system") if isinstance(value.get("system"), str) else None, value["code"])]
        elif type_code == "CodeableConcept" and isinstance(value, dict):
            for coding in value.get("coding", []) if isinstance(value.get("coding"), list) else []:
                if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                    codings.append((coding.get("system") if isinstance(coding.get("system"), str) else "", coding["code"]))
        else:
            return
        expansion = self.terminology.expansion(value_set)
        if expansion is None:
            self._add("information", "informational", f"Required binding to {value_set} not checked: value set not available", where, TERMINOLOGY)
            return
        results = [expansion.contains(system, code) for system, code in codings]
        if any(r is True for r in results):
            return
        shown = ", ".join(f"{s}|{c}" if s else c for s, c in codings) or "no code"
        if any(r is None for r in results):
            self._add("information", "informational", f"Membership of {shown} in {value_set} not verifiable here (code system not available)", where, TERMINOLOGY)
            return
        self._add("error", "code-invalid", f"{shown} is not in the required value set {value_set}", where, TERMINOLOGY)

    def _local_code_systems(self, value: dict[str, Any], where: str, type_code: str) -> None:
        """A code of a CodeSystem that the validated content itself holds (complete) must be one of
        its concepts, whatever binds the element: a module's rule topics, its override reasons."""
        codings = [value] if type_code == "Coding" else value.get("coding") if isinstance(value.get("coding"), list) else []
        for coding in codings:
            if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
                continue
            known = self.terminology.local_codes(coding.get("system"))
            if known is not None and coding["code"] not in known:
                self._add("error", "code-invalid", f"{coding.get('system')}|{coding['code']} is not a code of that "
                          "CodeSystem (which this content holds)", where, TERMINOLOGY)

    # -- references ------------------------------------------------------------------------------
    def _reference_target(self, element: dict[str, Any], type_code: str, value: dict[str, Any], where: str) -> None:
        targets: set[str] = set()
        for t in element.get("type", ()):
            if t.get("code") == type_code:
                for url in t.get("targetProfile", ()):
                    targets.add(self.defs.type_of_profile(url) or url.rpartition("/")[2])
        reference = value.get("reference")
        if not targets or "Resource" in targets or not isinstance(reference, str):
            return
        actual = self._referenced_type(reference)
        if actual and actual not in targets:
            self._add("error", "structure", f"Reference to a {actual} where {' or '.join(sorted(targets))} is expected", f"{where}.reference")

    def _referenced_type(self, reference: str) -> str | None:
        if reference in self.full_urls:
            return self.full_urls[reference]
        if reference.startswith("#"):
            for contained in self.resource.get("contained", []) or []:
                if isinstance(contained, dict) and contained.get("id") == reference[1:]:
                    return contained.get("resourceType")
            return None
        if reference.startswith("urn:"):
            return None
        parts = [p for p in reference.split("/_history/")[0].split("/") if p]
        if len(parts) >= 2 and parts[-2] in self.defs.type_names:
            return parts[-2]
        return None

    # -- slicing ---------------------------------------------------------------------------------
    def _slicing(self, index: StructureIndex, element: dict[str, Any], slices: list[dict[str, Any]], items: list[Item], where: str) -> None:
        slicing = element["slicing"]
        discriminators = slicing.get("discriminator", [])
        if not discriminators or any(d.get("type") not in ("value", "pattern") for d in discriminators):
            kinds = ", ".join(sorted({d.get("type", "?") for d in discriminators}))
            self._add("information", "not-supported", f"Slicing of {element['id']} by {kinds or 'no'} discriminator not checked", where)
            return
        counts = {s["id"]: 0 for s in slices}
        for item_where, value, type_code in items:
            match = next((s for s in slices if self._in_slice(index, s, discriminators, value)), None)
            if match is None:
                if slicing.get("rules") == "closed":
                    self._add("error", "structure", f"Value does not match any slice of {element['id']} (slicing is closed)", item_where)
                continue
            counts[match["id"]] += 1
            self._slice_item(index, match, value, item_where, type_code)
        for s in slices:
            minimum, maximum, count = s.get("min", 0) or 0, s.get("max", "*"), counts[s["id"]]
            if count < minimum:
                self._add("error", "required", f"Slice '{s.get('sliceName')}' requires at least {minimum} value(s), found {count}", where)
            if maximum != "*" and count > int(maximum):
                self._add("error", "structure", f"Slice '{s.get('sliceName')}' allows at most {maximum} value(s), found {count}", where)

    def _in_slice(self, index: StructureIndex, slice_def: dict[str, Any], discriminators: list[dict[str, Any]], value: Any) -> bool:
        for d in discriminators:
            path = d.get("path", "$this")
            expected = self._discriminator_value(index, slice_def, path)
            if expected is None:
                return False
            actual = value
            if path != "$this":
                for step in path.split("."):
                    actual = actual.get(step) if isinstance(actual, dict) else None
            if actual is None or not matches_pattern(actual, expected):
                return False
        return True

    def _discriminator_value(self, index: StructureIndex, slice_def: dict[str, Any], path: str) -> Any:
        target = slice_def if path == "$this" else index.by_id.get(f"{slice_def['id']}.{path}")
        if target is not None:
            for _, v in _prefixed(target, "fixed"):
                return v
            for _, v in _prefixed(target, "pattern"):
                return v
        if path == "url":  # extension slices name their extension by its profile
            for t in slice_def.get("type", ()):
                if t.get("profile"):
                    return t["profile"][0]
        return None

    def _slice_item(self, index: StructureIndex, slice_def: dict[str, Any], value: Any, where: str, type_code: str | None) -> None:
        """A value in a slice also meets the slice's own definition."""
        self._element(index, slice_def, value, where, type_code, descend=False)
        if not isinstance(value, dict):
            return
        if index.children.get(slice_def["id"]):
            self._children(index, slice_def["id"], value, where)
        elif type_code:
            for t in slice_def.get("type", ()):
                profile = self.defs.get(t["profile"][0]) if t.get("profile") else None
                if profile is not None:
                    saved, self._source = self._source, profile.url
                    self._constraints(profile.facets(profile.root).constraints, value, where, type_code)
                    self._children(profile, profile.root["id"], value, where)
                    self._source = saved


def _best_practice(constraint: dict[str, Any]) -> bool:
    """Best-practice invariants (dom-6: have a narrative) are advice, reported as information."""
    if constraint.get("bestPractice"):
        return True
    return any(
        isinstance(x, dict) and str(x.get("url", "")).endswith("elementdefinition-bestpractice") and x.get("valueBoolean")
        for x in constraint.get("extension", ())
    )


def _show(value: Any) -> str:
    import json

    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 160 else text[:157] + "..."
