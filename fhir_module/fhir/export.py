"""`fhir-module export`: modules as a FHIR Bundle (stdout or -o FILE) or FHIR packages (--package DIR).

The modules are the folders named with `--module` (repeatable), else every built-in module; several
modules make one Bundle, and one package each (`DIR/<module id>/package/`). `--bundle FILE` instead
re-exports an existing (for instance hand-edited) knowledge bundle, as a collection or transaction.
Either way only knowledge that passes the knowledge check is written.

Exit codes (as every command's): 0 written; 1 findings: the knowledge definition is invalid (its
message names the file and place) or the artifacts built from it fail the knowledge check (each
finding names the artifact and element); nothing is written; 2 the output could not be written or
the arguments cannot be used. With --package, the bundle is written only when -o is also given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fhir_module.engine.errors import KnowledgeLoadError
from fhir_module.engine.knowledgecheck import EXIT_REFUSED, KnowledgeCheckError, check_knowledge, errors
from fhir_module.knowledge import KnowledgeError, KnowledgeUnreadable, builtin_module_dirs, load_knowledge

from .bundle import BUNDLE_TYPES, build_modules_bundle, conformance_resources, dumps
from .canonical import BASE
from .package import PackageError, write_packages

# In `-o`, stands for each --fhir-version's name (R4, R5).
VERSION_FIELD = "{version}"


def export_command(args: argparse.Namespace) -> int:
    requested = getattr(args, "fhir_version", None) or ["R4"]
    # Several versions are built in one process from one reading of the modules (`--fhir-version`
    # repeated), each written to its own file: `-o` names them with {version}.
    versions = [requested] if isinstance(requested, str) else list(dict.fromkeys(requested))
    bundle_type = getattr(args, "type", None) or "collection"
    output = getattr(args, "output", None)
    package = getattr(args, "package", None)
    # The modules named (folders or knowledge files), else every built-in module.
    folders = list(getattr(args, "module", None) or []) or builtin_module_dirs()
    prog = f"fhir-module {getattr(args, 'command', None) or 'export'}"
    source = getattr(args, "bundle", None)
    if source and (package or getattr(args, "module", None)):
        print(f"{prog}: --bundle re-exports one bundle (-o); --module and --package build from "
              "module folders", file=sys.stderr)
        return 2
    if len(versions) > 1 and (source or package or not output or VERSION_FIELD not in output):
        print(f"{prog}: several --fhir-version write a bundle each: name the files with -o and "
              f"{VERSION_FIELD} (e.g. -o knowledge-{VERSION_FIELD}.json); --bundle and --package take one version",
              file=sys.stderr)
        return 2
    texts: dict[str, str] = {}
    try:
        modules = [] if source else [load_knowledge(folder) for folder in folders]
        for version in versions:
            bundle = _reexported(source, bundle_type) if source else build_modules_bundle(modules, version, bundle_type)
            # What is written must be knowledge that serves: the same check as `serve` and `cards`.
            findings = check_knowledge((entry["resource"] for entry in bundle["entry"]),
                                       allow_draft=bool(getattr(args, "allow_draft", False)))
            if errors(findings):
                raise KnowledgeCheckError(findings)
            if package:
                for folder in write_packages(modules, version, package):
                    print(f"wrote FHIR package {folder}", file=sys.stderr)
                if not output:
                    return 0
            texts[version] = dumps(bundle)
    except KnowledgeCheckError as error:
        print(f"{prog}: nothing was written: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except (KnowledgeLoadError, KnowledgeUnreadable) as error:  # a --bundle or module file that cannot be read
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    except KnowledgeError as error:
        print(f"{prog}: invalid knowledge: {error}", file=sys.stderr)
        return 1
    except PackageError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    except ValueError as error:  # an unsupported version or bundle type, or two artifacts with one id
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    if not output or output == "-":
        sys.stdout.write(texts[versions[0]])
        sys.stdout.flush()
        return 0
    for version, text in texts.items():
        path = output.replace(VERSION_FIELD, version)
        try:
            Path(path).write_text(text, encoding="utf-8")
        except OSError as error:
            print(f"{prog}: cannot write {path}: {error.strerror or error}", file=sys.stderr)
            return 2
    return 0


def _reexported(path: str, bundle_type: str) -> dict[str, Any]:
    """The resources of a knowledge bundle file as a bundle of `bundle_type` (sorted, ids kept)."""
    try:
        source = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise KnowledgeLoadError(f"cannot read the knowledge bundle {path}: {error}") from error
    if not isinstance(source, dict) or source.get("resourceType") != "Bundle" or not isinstance(source.get("entry"), list):
        raise KnowledgeLoadError(f"{path} is not a FHIR Bundle")
    if bundle_type not in BUNDLE_TYPES:
        raise ValueError(f"unsupported bundle type {bundle_type!r}: use one of {', '.join(BUNDLE_TYPES)}")
    resources = [e["resource"] for e in source["entry"] if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    if bundle_type == "transaction":
        # As a built transaction does: the module profiles the artifacts claim come along.
        claimed = {p for r in resources for p in (r.get("meta") or {}).get("profile") or [] if isinstance(p, str)}
        profiles = conformance_resources("R4")
        present = {(r.get("resourceType"), r.get("id")) for r in resources}
        if claimed & {str(r.get("url")) for r in profiles}:
            resources += [r for r in profiles if (r["resourceType"], r["id"]) not in present]
    entries = []
    for resource in sorted(resources, key=lambda r: (str(r.get("resourceType")), str(r.get("id")))):
        key = f"{resource.get('resourceType')}/{resource.get('id')}"
        url = resource["url"] if isinstance(resource.get("url"), str) else f"{BASE}/{key}"  # as absolute_url()
        entry: dict[str, Any] = {"fullUrl": url, "resource": resource}
        if bundle_type == "transaction":
            entry["request"] = {"method": "PUT", "url": key}
        entries.append(entry)
    base_id = str(source.get("id") or "knowledge").rsplit("-collection", 1)[0].rsplit("-transaction", 1)[0]
    return {"resourceType": "Bundle", "id": f"{base_id}-{bundle_type}"[:64], "type": bundle_type, "entry": entries}
