"""Issues and the OperationOutcome they are reported in.

Every check of every layer produces `Issue`s; only `to_outcome` knows the FHIR shape, so the layers stay
free of OperationOutcome details. The layer that found an issue is named in a `[layer]` prefix of
`diagnostics`, which any FHIR client shows, so a reader knows whether the JSON, the official schema, the
model or a profile rejected the content.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

# Layers, in the order they run.
JSON = "json"
SCHEMA = "schema"
MODEL = "model"
PROFILE = "profile"
TERMINOLOGY = "terminology"
INVARIANT = "invariant"

SEVERITY_ORDER = {"fatal": 0, "error": 1, "warning": 2, "information": 3}


@dataclass(frozen=True)
class Issue:
    """One finding: severity and code from the OperationOutcome value sets, a FHIRPath location."""

    severity: str  # fatal | error | warning | information
    code: str  # an IssueType code: invalid, structure, required, value, invariant, code-invalid, ...
    message: str
    location: str | None
    layer: str
    source: str | None = None  # e.g. the profile URL or the invariant key the issue comes from

    def key(self) -> tuple[str, str, str, str | None]:
        """What makes two issues the same finding, whichever definition reported it."""
        return (self.severity, self.code, self.message, self.location)

    def to_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": f"[{self.layer}] {self.message}" + (f" ({self.source})" if self.source else ""),
        }
        if self.location:
            issue["expression"] = [self.location]
        return issue


def to_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    """The OperationOutcome of a validation: each distinct issue once, or one "No issues" information."""
    unique: dict[tuple, Issue] = {}
    for issue in issues:
        unique.setdefault(issue.key(), issue)
    items = [i.to_fhir() for i in unique.values()]
    if not items:
        items = [{"severity": "information", "code": "informational", "diagnostics": "No issues"}]
    return {"resourceType": "OperationOutcome", "issue": items}


def has_errors(outcome: dict[str, Any]) -> bool:
    """True when the outcome holds an error or fatal issue (warnings and information do not count)."""
    return any(i.get("severity") in ("error", "fatal") for i in outcome.get("issue", []))


def fhirpath_location(base: str, segments: Iterable[str | int]) -> str:
    """A FHIRPath location from JSON path segments: `entry`, 3, `resource` -> `Bundle.entry[3].resource`.

    A primitive's extension object `_birthDate` is located at `birthDate`, as FHIR validators do.
    """
    out = base
    for seg in segments:
        if isinstance(seg, int):
            out += f"[{seg}]"
        else:
            out += "." + (seg[1:] if seg.startswith("_") else seg)
    return out
