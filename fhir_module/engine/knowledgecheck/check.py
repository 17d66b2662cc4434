"""`check_knowledge`: every finding over a set of FHIR artifacts, from the PlanDefinitions down to
what they use."""

from __future__ import annotations

from typing import Any, Iterable

from ..clinical._json import as_list

from ..actions import undeclared_reads
from .artifacts import Monographs, library_problems, nested_valuesets, valueset_problems
from .findings import Finding
from .index import Index, is_eca_rule, label, status_problem
from .plans import PlanChecker


def check_knowledge(resources: Iterable[Any], *, allow_draft: bool = False) -> list[Finding]:
    """What in these artifacts the engine could not run as written (see the package docstring)."""
    index = Index(resources)
    findings: list[Finding] = []
    plans = [plan for plan in index.of_type("PlanDefinition") if is_eca_rule(plan)]
    if not plans:
        findings.append(Finding("Bundle", "", "holds no eca-rule PlanDefinition: there is nothing to serve"))
    monographs = Monographs(index)
    used: dict[str, tuple[dict[str, Any], str]] = {}
    for plan in plans:
        problem = status_problem(plan, allow_draft)
        if problem:
            findings.append(Finding(label(plan), "status", problem))
        PlanChecker(index, monographs, plan, findings, used).check()
        for i, action in enumerate(as_list(plan.get("action"))):
            unread = undeclared_reads(action) if isinstance(action, dict) else []
            if unread:  # the service would never ask for that data: its rules would judge an empty chart
                findings.append(Finding(label(plan), f"action[{i}].input", f"its expressions read {', '.join(unread)} "
                                        "but its input does not ask for it", str(action.get("id", ""))))
    # The artifacts the PlanDefinitions use, and the value sets those include in turn.
    queue, seen = list(used.values()), set()
    while queue:
        resource, user = queue.pop(0)
        if label(resource) in seen:
            continue
        seen.add(label(resource))
        problem = status_problem(resource, allow_draft)
        if problem:
            findings.append(Finding(label(resource), "status", f"{problem} (used by {user})"))
        if resource["resourceType"] == "ValueSet":
            findings += [Finding(label(resource), element, message) for element, message in valueset_problems(index, resource)]
            queue += [(nested, f"{label(resource)} compose") for nested in nested_valuesets(index, resource)]
    for library in index.of_type("Library"):
        findings += [Finding(label(library), element, message) for element, message in library_problems(index, library)]
    return findings
