"""Layer 6, "knowledge": can the engine run this knowledge, all of it, as written?

For a Bundle (or a package's resources) that holds eca-rule PlanDefinitions, the engine's own
knowledge check (fhir_module/engine/knowledgecheck) runs over the resources together: strict
FHIRPath, variables in scope, references resolved, merged topics and suggestions complete, quotes
in the monograph, status. Each finding is an issue at its element, in a layer of its own, so that
what `serve` would refuse reads the same in `validate`.
"""

from __future__ import annotations

from typing import Any

from fhir_module.validation.outcome import Issue

KNOWLEDGE = "knowledge"


def is_knowledge(resources: list[dict[str, Any]]) -> bool:
    from fhir_module.engine.knowledgecheck import is_eca_rule

    return any(r.get("resourceType") == "PlanDefinition" and is_eca_rule(r) for r in resources)


def knowledge_issues(located: list[tuple[str, dict[str, Any]]], *, allow_draft: bool = False) -> list[tuple[int, Issue]]:
    """Issues of the knowledge check over resources given with the FHIRPath location of each
    (`Bundle.entry[3].resource`, or `PlanDefinition` for a package file), as (resource index, issue);
    index -1 for a finding about the knowledge as a whole."""
    from fhir_module.engine.knowledgecheck import check_knowledge
    from fhir_module.engine.knowledgecheck.index import label

    position: dict[str, int] = {}
    for i, (_, resource) in enumerate(located):
        position.setdefault(label(resource), i)
    found = []
    for finding in check_knowledge([resource for _, resource in located], allow_draft=allow_draft):
        index = position.get(finding.artifact, -1)
        location = None
        if index >= 0:
            root = located[index][0]
            location = f"{root}.{finding.element}" if finding.element else root
        action = f" (action {finding.action})" if finding.action else ""
        issue = Issue(finding.severity, "invalid", f"{finding.artifact}{action}: {finding.message}", location, KNOWLEDGE)
        found.append((index, issue))
    return found
