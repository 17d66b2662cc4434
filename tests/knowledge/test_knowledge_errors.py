"""Anything a module cannot express is a clear knowledge error naming the file and line, never a
Python exception: edits of a real knowledge file, each refused where it is written, and a sweep of
deleted and mistyped fields that must end in KnowledgeError (or a module that builds)."""

from __future__ import annotations

import copy
import random
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from fhir_module.fhir.bundle import build_resources
from fhir_module.knowledge import KnowledgeError, build_knowledge, builtin_module_dir, load_knowledge

LEVO = builtin_module_dir("levomilnacipran")
TEXT = (LEVO / "knowledge.yaml").read_text("utf-8")
MONOGRAPH = (LEVO / "levomilnacipran.md").read_text("utf-8")


def _line(text: str, needle: str, after: str = "") -> int:
    """1-based line of the first `needle` (after the first `after`)."""
    start = text.index(after) if after else 0
    return text[: text.index(needle, start)].count("\n") + 1


def _replace(old: str, new: str, after: str = "") -> Callable[[str], str]:
    def edit(text: str) -> str:
        start = text.index(after) if after else 0
        at = text.index(old, start)
        return text[:at] + new + text[at + len(old):]
    return edit


# (id, edit of the file's text, the text that locates the error line (after `after`), what the message says)
EDITS: list[tuple[str, Callable[[str], str], tuple[str, str], str]] = [
    ("yaml syntax", _replace("  route: oral\n", "  route: [oral\n"), ("  ingredient:", ""), "not valid YAML"),
    ("missing route", _replace("  route: oral\n", ""), ("drug:", ""), "'route' is a required property"),
    ("unknown rule field", _replace("    indicator: warning\n", "    indicator: warning\n    severity: high\n", "  - id: D1"),
     ("    severity: high", ""), "not a field of the knowledge schema"),
    ("quote not in the monograph", _replace("up to a maximum of 120 mg once daily", "up to a maximum of 150 mg once daily", "  - id: D1"),
     ("    quote: {section: dosage, text: \"up to a maximum of 150", ""), "not in the monograph"),
    ("monograph number not in the quote", _replace("limit: {value: 80, source: monograph}", "limit: {value: 70, source: monograph}", "  - id: R1"),
     ("      limit: {value: 70", ""), "number 70 is not in its quoted sentence"),
    ("unknown value set", _replace("therapies('bleeding-risk')", "therapies('bleeders')", "  - id: I4"),
     ("therapies('bleeders')", ""), "unknown value set 'bleeders'"),
    ("both inclusive and exclusive lower bound", _replace("low: 30, high: 59,", "low: 30, above: 29, high: 59,"),
     ("low: 30, above: 29", ""), "should not be valid"),
    ("titration steps", _replace('steps: [{dose: "%start", days: "%startDays"}, {dose: "%then"}]',
                                 'steps: [{dose: "%start", days: "%startDays"}, {dose: "%then", days: "%startDays"}, {dose: "%then"}]'),
     ("    suggestion: {type: update-dose, label: \"Start at", "  - id: D2"), "3 steps, but drug.dosing.titration has 2"),
    ("merged topic variable", _replace("    parameters: {limit: {value: 120, source: monograph}}", "    parameters: {max: {value: 120, source: monograph}}", "  - id: D1"),
     ("  - id: D1", ""), "defines %limit"),
    ("product outside the drug's value set", _replace('{rxnorm: "1433227", strength_mg: 20, ndc: ["0456-2220-30"]}',
                                                      '{rxnorm: "1433227", strength_mg: 20, ndc: ["0456-2220-30"]}\n    - {rxnorm: "311347", strength_mg: 600}'),
     ('    - {rxnorm: "311347"', ""), "is not an RxNorm code of the drug's value set"),
    ("frequency not in its sentence", _replace("frequency: {per_day: 1, text: once daily,", "frequency: {per_day: 2, text: twice daily,"),
     ("    frequency:", ""), "'twice daily' is not in its quoted sentence"),
    ("band value set undefined", _replace("valueset: end-stage-renal-disease, avoid: true", "valueset: esrd, avoid: true"),
     ("valueset: esrd", ""), "value set 'esrd' is not defined"),
    ("duplicate rule id", _replace("  - id: R1\n", "  - id: D1\n"), ("  - id: D1\n", "  - id: D3"), "'D1' is defined twice"),
]


@pytest.mark.parametrize(("edit", "locate", "message"), [e[1:] for e in EDITS], ids=[e[0] for e in EDITS])
def test_an_error_names_the_file_and_line(tmp_path: Path, edit: Callable[[str], str], locate: tuple[str, str], message: str) -> None:
    folder = Path(shutil.copytree(LEVO, tmp_path / "module", ignore=shutil.ignore_patterns("cases")))
    text = edit(TEXT)
    (folder / "knowledge.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(KnowledgeError) as caught:
        load_knowledge(folder)
    needle, after = locate
    expected = f"{folder / 'knowledge.yaml'}:{_line(text, needle, after)}: "
    assert str(caught.value).startswith(expected), str(caught.value)
    assert message in str(caught.value)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(node, dict):
        found += [p for key, value in node.items() for p in _paths(value, (*path, key))]
    elif isinstance(node, list):
        found += [p for index, value in enumerate(node) for p in _paths(value, (*path, index))]
    return found


def _mutate(data: Any, path: tuple[Any, ...], how: str) -> Any:
    data = copy.deepcopy(data)
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    if how == "delete":
        del parent[path[-1]]
    else:
        value = parent[path[-1]]
        parent[path[-1]] = {"str": 7, "int": "seven", "dict": ["x"], "list": {"x": 1}, "bool": "yes"}.get(
            type(value).__name__, None)
    return data


def test_broken_fields_are_knowledge_errors_never_python_exceptions() -> None:
    data = yaml.safe_load(TEXT)
    paths = _paths(data)
    rng = random.Random(7)
    shallow = [p for p in paths if len(p) <= 2]
    sample = shallow + rng.sample([p for p in paths if len(p) > 2], 40)
    outcomes = {"refused": 0, "built": 0}
    for path in sample:
        for how in ("delete", "mistype"):
            mutated = _mutate(data, path, how)
            try:
                knowledge = build_knowledge(mutated, monograph_text=MONOGRAPH, folder=LEVO)
            except KnowledgeError:
                outcomes["refused"] += 1
                continue
            except Exception as error:  # noqa: BLE001 - the point of the test
                pytest.fail(f"{how} {path}: {type(error).__name__}: {error}")
            for version in ("R4", "R5"):
                build_resources(knowledge, version)  # what loads must build
            outcomes["built"] += 1
    assert outcomes["refused"] > 100 and outcomes["built"] > 0, outcomes
