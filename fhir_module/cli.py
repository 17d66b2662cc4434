"""The `fhir-module` command: serve, export, build, validate, cards, feedback.

Each subcommand's work lives in the module that owns it; this file only declares the arguments,
so `fhir-module --help` shows the whole interface in one place.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import textwrap
from datetime import date
from typing import Any, Sequence


# One meaning per exit status for every command, so scripts and CI can rely on it.
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13  # as a tool killed by SIGPIPE
EXIT_STATUS = """exit status (every command):
  0  done, nothing wrong found
  1  findings: the input was read and has problems (invalid FHIR, knowledge that fails its
     checks, a hook request the service would refuse, e.g. for lack of prefetch)
  2  usage: the command could not run as asked (bad arguments, a file that cannot be read or
     is not what the command takes, an unknown profile, an output that cannot be written, an
     address that cannot be bound)
  141  the reader of the output went away before it ended (`... | head`)"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fhir-module")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


class _VersionAction(argparse.Action):
    """`--version`, looked up only when asked (reading the installed metadata costs every command
    tens of milliseconds at start)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=dest, nargs=0, help="show program's version number and exit", **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(f"{parser.prog} {_version()}")  # standard output, as argparse's own version action
        parser.exit()


def _sub(sub: Any, name: str, summary: str, details: str) -> argparse.ArgumentParser:
    description = textwrap.fill(f"{summary[:1].upper()}{summary[1:]}. {details}", 96)
    return sub.add_parser(name, help=summary, description=description,
                          epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fhir-module",
        description="A drug monograph as computable FHIR knowledge, served through CDS Hooks.",
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = _sub(sub, "serve", "run the CDS Hooks service",
                 "Says 'serving ... at URL' once the port is bound; the card preview page is at URL/.")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on; loopback only unless trusted clients are configured (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="worker processes sharing the port; they share JWT replay protection and secrets "
                            "through the database (default: 1)")
    serve.add_argument("--module", action="append", metavar="DIR",
                       help="serve this module folder (repeatable; with --bundle too, side by side)")
    serve.add_argument("--bundle", action="append", metavar="FILE",
                       help="serve the knowledge in this exported bundle (repeatable; default: the built-in modules)")
    serve.add_argument("--cases", action="append", metavar="DIR",
                       help="test cases of the --bundle knowledge, run before serving (repeatable; configuration: cases, FHIR_MODULE_CASES)")
    serve.add_argument("--skip-self-test", action="store_true",
                       help="serve without running the modules' own test cases first (experts; logged loudly)")
    serve.add_argument("--allow-draft", action="store_true", help="let draft artifacts serve (retired ones never do); for authors trying a module")

    export = _sub(sub, "export", "export modules' knowledge artifacts as a FHIR bundle or package",
                  "Exit 1 when the knowledge fails its checks (nothing is written), 2 when the output cannot be written.")
    export.add_argument("--module", action="append", metavar="DIR",
                        help="module folder to export (repeatable; default: every built-in module)")
    build = _sub(sub, "build", "check module folders and build their FHIR bundle or package",
                 "Exit 1 when a module fails its checks (nothing is written), 2 when the output cannot be written.")
    build.add_argument("module", nargs="+", metavar="MODULE_DIR", help="module folder (knowledge.yaml, monograph, ...)")
    for command in (export, build):
        command.add_argument("--fhir-version", choices=["R4", "R5"], action="append",
                             help="FHIR version of the artifacts (default: R4); repeat it for a bundle of each, "
                                  "written to the files -o names with {version} (-o knowledge-{version}.json)")
        command.add_argument("--type", choices=["collection", "transaction"], default="collection",
                             help="Bundle type; a transaction (PUT Type/id) loads into a FHIR server (default: collection)")
        command.add_argument("-o", "--output", help="file to write (default: standard output)")
        command.add_argument("--package", metavar="DIR",
                             help="write a FHIR package (package.json + one file per resource); several modules: one each")
        command.add_argument("--allow-draft", action="store_true", help="let draft artifacts serve (retired ones never do); for authors trying a module")
    export.add_argument("--bundle", metavar="FILE",
                        help="re-export this knowledge bundle (e.g. a hand-edited one) instead of building modules")

    validate = _sub(sub, "validate", "validate FHIR resources, bundles or packages (with the knowledge check)",
                    "Exit 1 when a file has an error; 2 when a file cannot be read or a --profile is unknown (cannot validate).")
    validate.add_argument("files", nargs="+", metavar="FILE|PACKAGE",
                          help="a resource or Bundle file, or a FHIR package folder")
    validate.add_argument("--profile", action="append", help="profile URL to validate against (repeatable)")
    validate.add_argument("--fhir-version", choices=["R4", "R5"], help="default: from the resource, else R4")
    validate.add_argument("-v", "--verbose", action="store_true",
                          help="also list information issues (invariants not checkable here, best practice)")
    validate.add_argument("--format", choices=["text", "json"], default="text",
                          help="readable text, or the OperationOutcome as JSON (default: text)")
    validate.add_argument("--allow-draft", action="store_true",
                          help="judge draft knowledge as `serve --allow-draft` would serve it")

    test = _sub(sub, "test", "run modules' own test cases through the engine, a verdict per case",
                "Exit 1 when a case fails or the knowledge fails its checks; 2 when a folder or file cannot be read.")
    test.add_argument("--module", action="append", metavar="DIR", help="module folder: its knowledge and its cases/ (repeatable)")
    test.add_argument("--bundle", action="append", metavar="FILE", help="knowledge bundle (repeatable; its cases with --cases)")
    test.add_argument("--package", action="append", metavar="DIR", help="FHIR package folder: its resources and its tests/ (repeatable)")
    test.add_argument("--cases", action="append", metavar="DIR", help="a folder of test cases (*.json, any depth; repeatable)")
    test.add_argument("--today", metavar="YYYY-MM-DD", type=date.fromisoformat,
                      help="resolve the cases' dates against this day (default: today)")
    test.add_argument("--allow-draft", action="store_true", help="let draft artifacts serve (retired ones never do); for authors trying a module")
    test.add_argument("-q", "--quiet", action="store_true", help="print only the failing cases and the count")

    cards = _sub(sub, "cards", "evaluate one CDS Hooks request offline and print the response",
                 "Exit 1 when the service would refuse the request (missing prefetch, bad context); 2 when the "
                 "file is not a CDS Hooks request or the knowledge cannot be read.")
    cards.add_argument("request", metavar="REQUEST.json")
    cards.add_argument("--module", action="append", metavar="DIR", help="module folder to apply (repeatable)")
    cards.add_argument("--bundle", action="append", metavar="FILE",
                       help="knowledge bundle to apply (repeatable; default: the built-in modules)")
    cards.add_argument("--service", help="service id (default: every service of the request's hook, cards together)")
    cards.add_argument("--allow-draft", action="store_true", help="let draft artifacts serve (retired ones never do); for authors trying a module")
    cards.add_argument("--today", metavar="YYYY-MM-DD", type=date.fromisoformat,
                       help="evaluate as of this date (default: today), e.g. to replay a logged request")
    feedback = sub.add_parser("feedback", help="what clinicians did with the cards (from the service's database)")
    feedback_sub = feedback.add_subparsers(dest="feedback_command", required=True)
    feedback_export = feedback_sub.add_parser(
        "export", help="the stored feedback items, or (--report) the override rate of each rule")
    feedback_export.add_argument("--report", action="store_true",
                                 help="one row per service and rule: accepted, overridden, override rate, reasons")
    feedback_export.add_argument("--format", choices=["csv", "json"], default="csv",
                                 help="default: csv (a cell that would start a spreadsheet formula, = + - @, "
                                      "gets a leading apostrophe; json keeps the text as sent)")
    feedback_export.add_argument("--service", help="only this service's feedback")
    feedback_export.add_argument("-o", "--output", help="file to write (default: standard output)")
    feedback_export.add_argument("--database", metavar="URL",
                                 help="sqlite:///path or postgresql://... (default: the service's configured database)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # inside the try: what --help left in the buffer can meet a closed pipe too
    except BrokenPipeError:
        # `fhir-module validate bundle.json | head`: the reader left before the output ended. Stop
        # quietly (no traceback), and point stdout at /dev/null so the flush at exit cannot raise.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _run(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    # Imports are deferred so that `fhir-module validate` does not load FastAPI, and so on.
    if args.command == "serve":
        # The service's start runs without the cyclic collector, its imports included; serve_command
        # says why, and turns it back on before serving.
        gc.disable()
        from fhir_module.api.server import serve_command as command
    elif args.command in ("export", "build"):
        from fhir_module.fhir.export import export_command as command
    elif args.command == "test":
        from fhir_module.selftest.cli import test_command as command
    elif args.command == "validate":
        from fhir_module.validation.cli import validate_command as command
    elif args.command == "feedback":
        from fhir_module.feedback.export import export_command as command
    else:
        from fhir_module.engine.cli import cards_command as command
    try:
        return command(args) or 0
    except BrokenPipeError:
        # `fhir-module validate bundle.json | head`: the reader left before the output ended. Stop
        # quietly (no traceback), and point stdout at /dev/null so the flush at exit cannot raise.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
