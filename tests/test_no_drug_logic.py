"""No drug-specific logic outside the knowledge files: the Python code never names the drug,
its brand, a drug of its classes, or one of their codes (the engine and builders are generic)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fhir_module"
KNOWLEDGE = yaml.safe_load((PACKAGE / "modules" / "levomilnacipran" / "knowledge.yaml").read_text(encoding="utf-8"))


def _forbidden_words() -> set[str]:
    words = {KNOWLEDGE["drug"]["name"].lower(), *(s.lower() for s in KNOWLEDGE["drug"].get("synonyms", []))}
    with (PACKAGE / "data" / "terminology" / "rxnorm.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            words.update(part.lower() for part in row["ingredient"].split("|") if len(part) > 4)
    return words


def _forbidden_codes() -> set[str]:
    with (PACKAGE / "data" / "terminology" / "rxnorm.csv").open(encoding="utf-8") as handle:
        return {row["rxcui"] for row in csv.DictReader(handle) if len(row["rxcui"]) >= 5}


def _code_of(path: Path) -> str:
    """The file without its docstrings and comments: prose may mention the first monograph."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r'("""|\'\'\')(?:.|\n)*?\1', "", text)
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def test_python_code_names_no_drug_and_no_drug_code() -> None:
    forbidden = re.compile(
        r"\b(" + "|".join(sorted(map(re.escape, _forbidden_words() | _forbidden_codes()), key=len, reverse=True)) + r")\b"
    )
    problems = [
        f"{path.relative_to(ROOT)}: names {found!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for found in sorted(set(forbidden.findall(_code_of(path).lower())))
    ]
    assert not problems, "\n".join(problems)


def test_the_guard_would_catch_a_drug_name() -> None:
    assert "levomilnacipran" in _forbidden_words() and "phenelzine" in _forbidden_words()
    assert "1433217" in _forbidden_codes()
