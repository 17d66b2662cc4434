"""What the knowledge check reports: findings that name the artifact, the element and the action."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import KnowledgeLoadError

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One thing the engine could not run as written.

    `artifact` is `Type/id` (or "Bundle" for the knowledge as a whole); `element` is a FHIRPath
    location inside the artifact (`action[0].action[2].condition[0].expression.expression`);
    `action` names the PlanDefinition action it belongs to (`levomilnacipran-order > D1 Maximum
    daily dose`), when it belongs to one.
    """

    artifact: str
    element: str
    message: str
    action: str = ""
    severity: str = ERROR

    def __str__(self) -> str:
        where = f"{self.artifact}.{self.element}" if self.element else self.artifact
        action = f" (action {self.action})" if self.action else ""
        return f"{where}{action}: {self.message}"


def errors(findings: list[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.severity == ERROR]


# The exit status of `serve`, `cards`, `export` and `test` when the knowledge fails its check: a
# finding, as every command says in its --help (0 ok, 1 findings, 2 usage; fhir_module/cli.py).
EXIT_REFUSED = 1


class KnowledgeCheckError(KnowledgeLoadError):
    """The knowledge failed its check: it must not serve. `findings` says everything found."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        shown = errors(findings)
        lines = "\n".join(f"  - {finding}" for finding in shown[:50])
        more = f"\n  ... and {len(shown) - 50} more" if len(shown) > 50 else ""
        super().__init__(f"the knowledge failed its check ({len(shown)} error(s)):\n{lines}{more}")
