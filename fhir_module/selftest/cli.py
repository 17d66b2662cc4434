"""`fhir-module test [--module DIR]... [--bundle FILE]... [--package DIR]... [--cases DIR]...`.

Runs the modules' own test cases through the engine and prints a verdict per case. The knowledge
is the built-in modules unless named; the cases are each module folder's `cases/`, each package's
`tests/`, and any `--cases` folder (a bundle carries no cases: name them).

Exit status: 0 every case passed; 1 a case failed (each named with its file and what differed), or
the knowledge fails the knowledge check (each finding named); 2 the knowledge or a case cannot be
read, or there is no case to run.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

from fhir_module.engine import KnowledgeLoadError
from fhir_module.engine.cli import engine_or_status
from fhir_module.knowledge import builtin_module_dirs

from .cases import ScenarioError
from .runner import case_sources, load_cases, report, run_cases

PROG = "fhir-module test"


def test_command(args: argparse.Namespace) -> int:
    modules, bundles = list(args.module or []), list(args.bundle or [])
    packages, case_dirs = list(args.package or []), list(args.cases or [])
    if not (modules or bundles or packages):
        modules = builtin_module_dirs()
    today = args.today or date.today()
    engine = engine_or_status(PROG, modules, bundles, packages, allow_draft=args.allow_draft)
    if isinstance(engine, int):
        return engine
    try:
        files = case_sources(modules, packages, case_dirs)
        cases = load_cases(files, today)
    except (ScenarioError, KnowledgeLoadError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    if not cases:
        print(f"{PROG}: no test cases to run: a module keeps them in cases/, a package in tests/; "
              "name others with --cases DIR", file=sys.stderr)
        return 2
    results = run_cases(engine, cases, today)
    for line in report(results, passes=not args.quiet):
        print(line)
    return 0 if all(result.passed for result in results) else 1
