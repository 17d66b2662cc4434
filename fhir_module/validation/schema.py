"""Layer 2: the official FHIR JSON schema of the content's version (draft-06).

The schema is loaded and its validators compiled once per resource type and cached. Each resource,
including each resource nested in a Bundle entry, a `contained` list or a Parameters, is checked against
its own type's definition: the schema's `ResourceList` (a `oneOf` over every resource type) would
otherwise turn one wrong element of an entry into a hundred-odd unreadable alternatives.

Most content is valid, so each resource is first checked by `jsonschema_rs` (compiled, fast) against the
same definition; only a resource it rejects goes through `jsonschema`, whose errors carry the paths and
keywords the issues are made from.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Iterator

import orjson

if TYPE_CHECKING:
    from jsonschema import Draft6Validator
    from jsonschema.exceptions import ValidationError

try:  # a compiled (Rust) validator answers "valid?" ~100x faster; jsonschema explains what is wrong
    import jsonschema_rs
except ImportError:  # pragma: no cover - the fast path is an optimisation only
    jsonschema_rs = None

from fhir_module.validation.outcome import SCHEMA, Issue, fhirpath_location

SCHEMA_FILES = {"R4": "fhir.r4.schema.json", "R5": "fhir.r5.schema.json"}


def _allow_r4_technical_correction(definitions: dict[str, Any]) -> None:
    """The published R4 schema lists FHIR versions up to 4.0.0 in every `fhirVersion` enum; R4 as
    published (and as every package declares it) is 4.0.1, so 4.0.1 joins each such enum."""
    for definition in definitions.values():
        for prop in (definition.get("properties") or {}).values() if isinstance(definition, dict) else []:
            enum = prop.get("enum") if isinstance(prop, dict) else None
            if isinstance(enum, list) and "4.0.0" in enum and "4.0.1" not in enum:
                enum.append("4.0.1")


class FhirSchema:
    """One version's schema, with a compiled validator per resource type."""

    def __init__(self, version: str) -> None:
        path = resources.files("fhir_module.data.schemas").joinpath(SCHEMA_FILES[version])
        root = orjson.loads(path.read_bytes())  # as json.loads reads it, in half the time
        self.version = version
        self.resource_types: frozenset[str] = frozenset(root["discriminator"]["mapping"])
        self._definitions = dict(root["definitions"])
        if version == "R4":
            _allow_r4_technical_correction(self._definitions)
        # Nested resources are validated on their own (see module docstring).
        self._definitions["ResourceList"] = {"type": "object", "required": ["resourceType"]}
        # Which named definition a failing subschema is, to say "not a valid date" rather than quote a regex.
        self._names = {id(schema): name for name, schema in self._definitions.items()}
        self._validators: dict[str, Draft6Validator] = {}
        self._fast: dict[str, Any] = {}
        self._rust_definitions: dict[str, Any] = {}  # by name, made as the types checked reach them

    def _validator(self, resource_type: str) -> Draft6Validator:
        validator = self._validators.get(resource_type)
        if validator is None:
            # Only for a resource the compiled validator refused (or without it): not imported at start.
            from jsonschema import Draft6Validator

            schema = {"$ref": f"#/definitions/{resource_type}", "definitions": self._definitions}
            validator = self._validators[resource_type] = Draft6Validator(schema)
        return validator

    def _fast_validator(self, resource_type: str) -> Any:
        if jsonschema_rs is None:
            return None
        validator = self._fast.get(resource_type)
        if validator is None:
            # Only the definitions the type reaches: compiling the whole schema's for each type
            # took most of a `validate` command's schema layer (0.45 s for a bundle's 8 types; 0.06 s).
            definitions = self._rust_definitions
            reached = _reachable(self._definitions, resource_type)
            for name in reached - definitions.keys():
                definitions[name] = _rust_safe_patterns(self._definitions[name])
            schema = {"$ref": f"#/definitions/{resource_type}", "definitions": {name: definitions[name] for name in reached}}
            validator = self._fast[resource_type] = jsonschema_rs.Draft6Validator(schema)
        return validator

    def check(self, resource: dict[str, Any], location: str) -> list[Issue]:
        """Schema issues of one resource (not of the resources nested in it), located from `location`."""
        rtype = resource.get("resourceType")
        if rtype not in self.resource_types:
            return [Issue("error", "structure", f"Unknown resource type '{rtype}' in FHIR {self.version}", location, SCHEMA)]
        fast = self._fast_validator(rtype)
        if fast is not None and fast.is_valid(resource):
            return []
        issues: list[Issue] = []
        for error in self._validator(rtype).iter_errors(resource):
            issues.extend(self._issues(error, location))
        return issues

    def _issues(self, error: ValidationError, base: str) -> Iterator[Issue]:
        path = list(error.absolute_path)
        where = fhirpath_location(base, path)
        kind = error.validator
        if kind == "additionalProperties":
            known = error.schema.get("properties", {})
            for key in error.instance:
                if key not in known:
                    yield Issue("error", "structure", f"Unknown element '{key}'", fhirpath_location(base, path + [key]), SCHEMA)
        elif kind == "type":
            yield Issue("error", "structure", f"Wrong JSON type: expected {error.validator_value}, found {_json_type(error.instance)}", where, SCHEMA)
        elif kind == "pattern":
            name = self._names.get(id(error.schema), "value")
            yield Issue("error", "value", f"{error.instance!r} is not a valid {name}", where, SCHEMA)
        elif kind == "enum":
            allowed = ", ".join(map(str, error.validator_value))
            yield Issue("error", "code-invalid", f"Code {error.instance!r} is not one of: {allowed}", where, SCHEMA)
        elif kind == "const":
            yield Issue("error", "value", f"Expected {error.validator_value!r}, found {error.instance!r}", where, SCHEMA)
        elif kind == "required":
            yield Issue("error", "required", error.message, where, SCHEMA)
        else:
            yield Issue("error", "structure", error.message, where, SCHEMA)


def _reachable(definitions: dict[str, Any], start: str) -> set[str]:
    """The names of the definitions `start` refers to (`#/definitions/...`), directly or not, and itself."""
    found: set[str] = set()
    pending = [start]
    while pending:
        name = pending.pop()
        if name in found or name not in definitions:
            continue
        found.add(name)
        nodes = [definitions[name]]
        while nodes:
            node = nodes.pop()
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str) and ref.startswith("#/definitions/"):
                    pending.append(ref[len("#/definitions/"):])
                nodes.extend(node.values())
            elif isinstance(node, list):
                nodes.extend(node)
    return found


def _rust_safe_patterns(node: Any) -> Any:
    """A copy of the definitions whose regexes the Rust engine accepts.

    The official schemas hold patterns such as `[0-9]{1,9}})?` with a stray `}`, a literal for Python's
    `re` but a syntax error for Rust's `regex`; escaping it keeps the meaning.
    """
    if isinstance(node, dict):
        return {k: (_escape_stray_braces(v) if k == "pattern" and isinstance(v, str) else _rust_safe_patterns(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rust_safe_patterns(v) for v in node]
    return node


def _escape_stray_braces(pattern: str) -> str:
    out, in_quantifier, i = [], False, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "{":
            in_quantifier = True
        elif ch == "}":
            if not in_quantifier:
                ch = "\\}"
            in_quantifier = False
        out.append(ch)
        i += 1
    return "".join(out)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


@lru_cache(maxsize=None)
def fhir_schema(version: str) -> FhirSchema:
    """The cached schema of FHIR `version` ("R4" or "R5")."""
    return FhirSchema(version)
