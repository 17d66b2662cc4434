"""`fhir-module validate FILE|PACKAGE... [--profile URL] [--fhir-version R4|R5] [--format text|json]`.

A FILE is a resource or a Bundle; a PACKAGE is a FHIR package folder (`package.json` with one file
per resource, as `export --package` writes it, or the folder holding that `package/`): each of its
files is validated, and knowledge (bundles or packages with eca-rule PlanDefinitions) also gets the
knowledge check over all of its resources together (the "knowledge" layer), its issues reported
in the file of the artifact they concern.

Exit status: 0 when no file has an error, 1 when one has, 2 when a file cannot be read or a
`--profile` is not one this validator knows (it cannot validate against it). Text output
lists each issue with its severity, FHIRPath location and message, file by file; `--format json` prints
the OperationOutcome (one per file; a JSON array of them for several files).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from fhir_module.validation.definitions import definitions
from fhir_module.validation.knowledge import is_knowledge, knowledge_issues
from fhir_module.validation.outcome import Issue, has_errors, to_outcome
from fhir_module.validation.validator import validate


# The cyclic collector's thresholds while the command runs. What it validates lives until the end
# and holds few cycles: at the default (a collection every 700 new objects) the collector ran ~200
# times over the R4 bundle, 5% of the command's instructions, and freed little (the same peak
# memory for that bundle and for 8 times it). Not switched off: what cycles hold grows with the
# input (13,700 objects for the bundle, 65,000 for 8 times it), and rarer collections bound it.
GC_THRESHOLDS = (50_000, 20, 10)


def validate_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    previous = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        return _validate_command(args, out)
    finally:
        gc.set_threshold(*previous)  # a caller in the same process gets its own back


def _validate_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    options = {"fhir_version": getattr(args, "fhir_version", None), "profiles": getattr(args, "profile", None),
               "allow_draft": bool(getattr(args, "allow_draft", False))}
    unknown = [url for url in getattr(args, "profile", None) or [] if definitions().get(url) is None]
    if unknown:
        # Not "INVALID": nothing was checked. Say which profiles it does know.
        known = "\n  ".join(definitions().module_profiles)
        print(f"fhir-module validate: cannot validate: unknown profile {', '.join(unknown)}. Known here: the "
              f"FHIR R4 core definitions and the module's profiles:\n  {known}", file=sys.stderr)
        return 2
    results: list[tuple[str, dict[str, Any] | None, str | None]] = []
    # One file: its model layer beside the others (model.check_beside). Not for several, where each
    # child would load the models again; here they are loaded once.
    beside = len(args.files) == 1
    for name in args.files:
        if Path(name).is_dir():
            results += _package_results(Path(name), options)
            continue
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            results.append((name, None, f"cannot read: {exc.strerror or exc}"))
            continue
        results.append((name, validate(data, **options, model_beside=beside), None))

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


def _package_results(folder: Path, options: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None, str | None]]:
    """Each file of a FHIR package validated, and the package's knowledge checked as one."""
    if (folder / "package" / "package.json").is_file():
        folder = folder / "package"
    if not (folder / "package.json").is_file():
        return [(str(folder), None, "is a folder but not a FHIR package (no package.json)")]
    files = sorted(p for p in folder.glob("*.json") if p.name not in ("package.json", ".index.json"))
    results: list[tuple[str, dict[str, Any] | None, str | None]] = []
    located: list[tuple[str, dict[str, Any]]] = []
    owner: list[int] = []  # the result each readable resource belongs to
    for path in files:
        try:
            data = path.read_bytes()
            resource = json.loads(data)
        except (OSError, ValueError) as exc:
            results.append((str(path), None, f"cannot read: {getattr(exc, 'strerror', None) or exc}"))
            continue
        results.append((str(path), validate(data, **options), None))
        if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
            located.append((resource["resourceType"], resource))
            owner.append(len(results) - 1)
    if is_knowledge([r for _, r in located]):
        whole: list[Issue] = []
        for index, issue in knowledge_issues(located, allow_draft=options["allow_draft"]):
            if index < 0:
                whole.append(issue)
                continue
            name, outcome, _ = results[owner[index]]
            kept = [i for i in (outcome or {}).get("issue", []) if i.get("diagnostics") != "No issues"]
            results[owner[index]] = (name, {"resourceType": "OperationOutcome", "issue": kept + [issue.to_fhir()]}, None)
        if whole:
            results.append((str(folder), to_outcome(whole), None))
    return results


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
