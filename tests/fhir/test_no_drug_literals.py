"""Guard: the export builders name no drug, code or dose; those live in the knowledge files.

Reads the source of this area's modules. A number that is a drug fact (a dose, a renal limit, a
strength, a day count) or a drug or product name would mean the builders no longer follow the data.
"""

from __future__ import annotations

import io
import re
import tokenize
from importlib import resources

import pytest

MODULES = ["medicationknowledge", "documentreference", "clinicalusedefinition", "library", "bundle", "package",
           "export", "terms", "dosing"]
# Drug names, its codes and the numbers of its monograph (doses, strengths, CrCl bands, washout days;
# not 2, which also counts indents, sequences and exit codes).
FORBIDDEN_WORDS = re.compile(r"levomilnacipran|milnacipran|fetzima|1433\d+|N06AX|0456-", re.IGNORECASE)
FORBIDDEN_NUMBERS = {"7", "14", "15", "20", "29", "30", "40", "59", "60", "80", "90", "120"}


def _source(module: str) -> str:
    return resources.files("fhir_module.fhir").joinpath(f"{module}.py").read_text("utf-8")


@pytest.mark.parametrize("module", MODULES)
def test_no_drug_names_or_codes(module):
    assert FORBIDDEN_WORDS.findall(_source(module)) == []


@pytest.mark.parametrize("module", MODULES)
def test_no_dose_numbers_in_code(module):
    tokens = tokenize.generate_tokens(io.StringIO(_source(module)).readline)
    numbers = [(t.string, t.start[0]) for t in tokens if t.type == tokenize.NUMBER and t.string in FORBIDDEN_NUMBERS]
    assert numbers == [], f"numeric literals (value, line) in fhir_module/fhir/{module}.py"


def test_the_guard_sees_a_literal():
    source = "limit = 120  # levomilnacipran\n"
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    assert [t.string for t in tokens if t.type == tokenize.NUMBER] == ["120"]
    assert FORBIDDEN_WORDS.search(source)
