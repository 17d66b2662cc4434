"""`fhir-module validate FILE... [--profile URL] [--fhir-version R4|R5] [--format text|json]`.

Exit status: 0 when no file has an error, 1 when one has, 2 when a file cannot be read. Text output
lists each issue with its severity, FHIRPath location and message, file by file; `--format json` prints
the OperationOutcome (one per file; a JSON array of them for several files).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from fhir_module.validation.outcome import has_errors
from fhir_module.validation.validator import validate


def validate_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    results: list[tuple[str, dict[str, Any] | None, str | None]] = []
    for name in args.files:
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            results.append((name, None, f"cannot read: {exc.strerror or exc}"))
            continue
        outcome = validate(data, fhir_version=getattr(args, "fhir_version", None), profiles=getattr(args, "profile", None))
        results.append((name, outcome, None))

    if getattr(args, "format", "text") == "json":
        outcomes = [o if o is not None else _unreadable_outcome(err or "") for _, o, err in results]
        json.dump(outcomes[0] if len(outcomes) == 1 else outcomes, out, indent=2)
        out.write("\n")
    else:
        for name, outcome, err in results:
            out.write(_text_report(name, outcome, err, verbose=getattr(args, "verbose", False)))

    if any(err for _, _, err in results):
        return 2
    return 1 if any(has_errors(o) for _, o, _ in results if o is not None) else 0


def _unreadable_outcome(message: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": "fatal", "code": "not-found", "diagnostics": message}]}


def _text_report(name: str, outcome: dict[str, Any] | None, err: str | None, *, verbose: bool = False) -> str:
    """One line of verdict, then each error and warning; information only with --verbose."""
    if outcome is None:
        return f"{name}: {err}\n"
    issues = outcome["issue"]
    counts = {s: sum(1 for i in issues if i["severity"] == s) for s in ("fatal", "error", "warning", "information")}
    if len(issues) == 1 and issues[0].get("diagnostics") == "No issues":
        return f"{name}: OK (no issues)\n"
    errors = counts["fatal"] + counts["error"]
    verdict = "INVALID" if errors else "OK"
    hidden = "" if verbose or not counts["information"] else "; --verbose lists them"
    lines = [f"{name}: {verdict} ({errors} error(s), {counts['warning']} warning(s), "
             f"{counts['information']} information{hidden})"]
    for issue in issues:
        if issue["severity"] == "information" and not verbose:
            continue
        where = ", ".join(issue.get("expression", [])) or "(whole file)"
        lines.append(f"  {issue['severity'].upper():<11} {where}: {issue.get('diagnostics', '')}")
    return "\n".join(lines) + "\n"
