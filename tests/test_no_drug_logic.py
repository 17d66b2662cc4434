"""No drug-specific logic outside the knowledge files: the Python code never names a drug of any
module, its brands, a drug class, or one of their codes (the engine and builders are generic).

What counts as a drug is read from the data: every module folder's knowledge (its drug, products,
synonyms, and the ingredients, classes, codes and names of its drug value sets), its terminology
overlay, and the shared RxNorm table (ingredients, classes, brands, codes)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fhir_module"
MODULES = sorted(path.parent for path in (PACKAGE / "modules").glob("*/knowledge.yaml"))
_BRAND = re.compile(r"\[([^\]]+)\]")
# Value set fields that make it a drug value set (its names are then drug names).
_DRUG_FIELDS = ("rxnorm_class", "rxnorm_ingredients", "exclude_ingredients", "names_from_class")


def _knowledge(folder: Path) -> dict[str, Any]:
    return yaml.safe_load((folder / "knowledge.yaml").read_text(encoding="utf-8"))


def _rxnorm_rows() -> Iterator[dict[str, str]]:
    """The shared RxNorm table and every module's RxNorm overlay."""
    for path in [PACKAGE / "data" / "terminology" / "rxnorm.csv", *(m / "terminology" / "rxnorm.csv" for m in MODULES)]:
        if path.is_file():
            with path.open(encoding="utf-8") as handle:
                yield from csv.DictReader(handle)


def _drug_valuesets(knowledge: dict[str, Any]) -> Iterator[dict[str, Any]]:
    drug_vs = (knowledge.get("drug") or {}).get("valueset")
    for vs in knowledge.get("valuesets") or []:
        if vs.get("id") == drug_vs or any(field in vs for field in _DRUG_FIELDS):
            yield vs


def _forbidden_words() -> set[str]:
    words: set[str] = set()
    classes: set[str] = set()  # named whatever their length ("maoi")
    for row in _rxnorm_rows():
        words.update(part for part in row["ingredient"].split("|"))
        classes.add(row["class"])
        words.update(_BRAND.findall(row["display"]))
    for folder in MODULES:
        knowledge = _knowledge(folder)
        drug = knowledge.get("drug") or {}
        words.update([drug.get("name", ""), *drug.get("synonyms", []), (drug.get("ingredient") or {}).get("name", "")])
        for vs in _drug_valuesets(knowledge):
            classes.update([vs["id"], vs.get("rxnorm_class", "")])
            words.update([*vs.get("names", []), *vs.get("rxnorm_ingredients", []), *vs.get("exclude_ingredients", [])])
    # Short names ("IV", "tea") would match ordinary code; class and value set ids are always guarded.
    return {word.lower() for word in words if len(word) > 4} | {c.lower() for c in classes if c}


def _forbidden_codes() -> set[str]:
    codes = {row["rxcui"] for row in _rxnorm_rows()}
    for folder in MODULES:
        knowledge = _knowledge(folder)
        drug = knowledge.get("drug") or {}
        codes.update(str(p.get("rxnorm", "")) for p in drug.get("products", []))
        codes.add(str((drug.get("ingredient") or {}).get("rxnorm", "")))
        for vs in _drug_valuesets(knowledge):
            codes.update(str(code) for code in vs.get("codes", []))
    return {code for code in codes if len(code) >= 5}


def _code_of(path: Path) -> str:
    """The file without its docstrings and comments: prose may mention the modules' drugs."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r'("""|\'\'\')(?:.|\n)*?\1', "", text)
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def _forbidden() -> re.Pattern[str]:
    terms = sorted(map(re.escape, _forbidden_words() | _forbidden_codes()), key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(terms) + r")\b")


def test_python_code_names_no_drug_and_no_drug_code() -> None:
    forbidden = _forbidden()
    problems = [
        f"{path.relative_to(ROOT)}: names {found!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for found in sorted(set(forbidden.findall(_code_of(path).lower())))
    ]
    assert not problems, "\n".join(problems)


def test_every_module_s_drugs_are_guarded() -> None:
    assert {folder.name for folder in MODULES} >= {"levomilnacipran", "duloxetine"}
    words, codes = _forbidden_words(), _forbidden_codes()
    for folder in MODULES:
        knowledge = _knowledge(folder)
        assert knowledge["drug"]["name"].lower() in words, folder.name
        assert all(str(p["rxnorm"]) in codes for p in knowledge["drug"].get("products", [])), folder.name
    # Drugs, classes, brands and names-only members of either module.
    assert {"levomilnacipran", "duloxetine", "phenelzine", "fluvoxamine", "ciprofloxacin", "enoxacin",
            "rasagiline", "fetzima", "serotonergic", "bleeding_risk", "cyp1a2-inhibitor"} <= words
    assert {"1433217", "596934", "72625"} <= codes


def test_the_guard_catches_a_drug_a_class_a_brand_and_a_code_but_not_prose() -> None:
    forbidden = _forbidden()
    assert forbidden.findall('if name == "duloxetine": limit = 120') == ["duloxetine"]
    assert forbidden.findall("service = 'duloxetine-order-select'") == ["duloxetine"]
    assert forbidden.findall("therapies('maoi')") == ["maoi"]
    assert forbidden.findall("valueset = 'cyp1a2-inhibitor'") == ["cyp1a2-inhibitor"]
    assert forbidden.findall("brand = 'fetzima'") == ["fetzima"]
    assert forbidden.findall("codes = {'596934'}") == ["596934"]
    assert forbidden.findall("klass = 'serotonergic'") == ["serotonergic"]
    sample = ROOT / "tests" / "support" / "scenarios.py"
    assert not forbidden.findall(_code_of(sample).lower())
