"""`fhir-module export`: modules as a FHIR Bundle (stdout or -o FILE) or FHIR packages (--package DIR).

The modules are the folders named with `--module` (repeatable), else every built-in module; several
modules make one Bundle, and one package each (`DIR/<module id>/package/`).

Exit codes: 0 written; 1 the output could not be written; 2 the knowledge definition is invalid (its
message names the file and place). With --package, the bundle is written only when -o is also given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fhir_module.knowledge import KnowledgeError, builtin_module_dirs, load_knowledge

from .bundle import build_modules_bundle, dumps
from .package import PackageError, write_packages


def export_command(args: argparse.Namespace) -> int:
    version = getattr(args, "fhir_version", None) or "R4"
    bundle_type = getattr(args, "type", None) or "collection"
    output = getattr(args, "output", None)
    package = getattr(args, "package", None)
    # The modules named (folders or knowledge files), else every built-in module.
    folders = list(getattr(args, "module", None) or []) or builtin_module_dirs()
    prog = f"fhir-module {getattr(args, 'command', None) or 'export'}"
    try:
        modules = [load_knowledge(folder) for folder in folders]
        if package:
            for folder in write_packages(modules, version, package):
                print(f"wrote FHIR package {folder}", file=sys.stderr)
            if not output:
                return 0
        text = dumps(build_modules_bundle(modules, version, bundle_type))
    except KnowledgeError as error:
        print(f"{prog}: invalid knowledge: {error}", file=sys.stderr)
        return 2
    except PackageError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # an unsupported version or bundle type, or two artifacts with one id
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    if not output or output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as error:
        print(f"{prog}: cannot write {output}: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0
