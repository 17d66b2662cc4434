"""The invariants' parse trees made ahead of time (validation/parsed.py) are fhirpathpy's own: the
shipped file is what fhirpathpy's parser makes of the shipped definitions now (it fails when either
changes and the file was not rewritten), and an invariant compiled from it is the very callable
fhirpathpy.compile makes, so it evaluates every value the same way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import fhirpathpy
from fhirpathpy.parser import parse

from fhir_module.engine.fhirpath.typepaths import R4_MODEL
from fhir_module.validation import invariants, parsed, validate
from fhir_module.validation.definitions import _definitions_dir

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_file_is_what_fhirpathpy_makes_of_the_shipped_definitions() -> None:
    shipped = _definitions_dir().joinpath(parsed.FILE).read_text(encoding="utf-8")
    assert shipped == parsed.build(), "stale: run python -m fhir_module.validation.parsed"


def test_every_invariant_of_the_definitions_is_in_it() -> None:
    expressions = parsed.expressions()
    assert len(expressions) > 200
    for expression in expressions:
        assert parsed.parsed(expression) == parse(expression)
    assert parsed.parsed("name.exists() and not-an-invariant-of-ours") is None


def test_an_invariant_compiled_from_it_is_what_fhirpathpy_compiles() -> None:
    for expression in parsed.expressions():
        ours = invariants._compile(expression)
        theirs = fhirpathpy.compile(expression, R4_MODEL, options=invariants._OPTIONS)
        assert type(ours) is type(theirs)
        assert vars(ours) == vars(theirs)  # the same function, parse tree, model and options


def test_an_expression_it_lacks_is_parsed_at_run_time() -> None:
    extension = {"url": "http://example.org/x", "valueString": "a"}
    assert invariants.evaluate("url.exists() and value.exists() and (1 | 2).count() = 2", extension, "Extension", {}) is True
    assert isinstance(invariants.evaluate("url.exists( and", extension, "Extension", {}), Exception)


def test_validating_the_examples_reads_only_parse_trees_it_holds(monkeypatch) -> None:
    # The point of the file: a validation parses nothing with ANTLR.
    def refuse(expression: str):
        raise AssertionError(f"parsed at run time: {expression}")

    monkeypatch.setattr(invariants, "_compiled", {})
    monkeypatch.setattr(fhirpathpy, "compile", refuse)
    for name in ("levomilnacipran-r4-collection.json", "levomilnacipran-r4-transaction.json"):
        validate((EXAMPLES / name).read_bytes())


def test_the_trees_are_read_only_under_the_parser_that_made_them(tmp_path: Path) -> None:
    # The file keeps the digest of fhirpathpy's parser; with another parser installed (here: a
    # comment more in its listener) no tree is read from the file: each invariant is parsed by it.
    copy = tmp_path / "fhirpathpy"
    shutil.copytree(Path(fhirpathpy.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    listener = copy / parsed.PARSER / "ASTPathListener.py"
    listener.write_text(listener.read_text(encoding="utf-8") + "\n# another parser\n", encoding="utf-8")
    code = ("import sys; from fhir_module.validation import parsed; "
            "assert sys.modules['fhir_module.engine.fhirpath.installed'].package_folder().is_relative_to(sys.argv[1]); "
            "assert parsed.expressions() and all(parsed.parsed(e) is None for e in parsed.expressions())")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": str(tmp_path)})
    # and under the installed parser, every one is read from the file
    assert all(parsed.parsed(e) is not None for e in parsed.expressions())
