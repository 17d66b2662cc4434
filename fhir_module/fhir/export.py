"""`fhir-module export`: the knowledge as a FHIR Bundle (stdout or -o FILE) or a FHIR package (--package DIR).

Exit codes: 0 written; 1 the output could not be written; 2 the knowledge definition is invalid (its
message names the file and place). With --package, the bundle is written only when -o is also given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fhir_module.knowledge import KnowledgeError, load_knowledge

from .bundle import build_bundle, dumps
from .package import PackageError, write_package


def export_command(args: argparse.Namespace) -> int:
    version = getattr(args, "fhir_version", None) or "R4"
    bundle_type = getattr(args, "type", None) or "collection"
    output = getattr(args, "output", None)
    package = getattr(args, "package", None)
    # The CLI always exports the packaged knowledge; callers (and tests) may name another file.
    knowledge_path = getattr(args, "knowledge", None)
    try:
        knowledge = load_knowledge(knowledge_path)
        if package:
            folder = write_package(knowledge, version, package)
            print(f"wrote FHIR package {folder}", file=sys.stderr)
            if not output:
                return 0
        text = dumps(build_bundle(knowledge, version, bundle_type))
    except KnowledgeError as error:
        print(f"fhir-module export: invalid knowledge: {error}", file=sys.stderr)
        return 2
    except PackageError as error:
        print(f"fhir-module export: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # an unsupported version or bundle type, or two artifacts with one id
        print(f"fhir-module export: {error}", file=sys.stderr)
        return 2
    if not output or output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as error:
        print(f"fhir-module export: cannot write {output}: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0
