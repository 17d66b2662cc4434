"""An independent validator over the same corpus: @medplum/core 4.5.2 `validateResource` (Node, from npm).

Every file where its verdict (valid / invalid) differs from ours must be listed below with the reason;
a difference not in the table, or a listed one that no longer occurs, fails the test. Node is a required
part of the test environment: without it the test fails, it does not skip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from fhir_module.validation import has_errors, validate

HERE = Path(__file__).parent
MEDPLUM_DIR = HERE / "medplum"
CORPUS = HERE / "corpus"
SNAPSHOTS = HERE.parents[1] / "profiles" / "snapshots"

BINDINGS = "medplum does not check required bindings (code values against value sets), neither core ones nor the profile's"
DATATYPE_INVARIANTS = "medplum does not evaluate the invariants of data types (exp-1 on Expression, per-1 on Period, qty-3 on Quantity)"
BACKBONE = (
    "medplum applies a profile's rules at the resource's top level and on its data-type elements, but not inside "
    "backbone elements: cardinalities, fixed values, slices and invariants the profile puts on PlanDefinition.action.* "
    "(or on MedicationKnowledge.monograph.source's target) are not checked; reference targets are only warnings"
)
SLICE_CHILDREN = "medplum counts slice members but does not apply the constraints on a slice's children (code.coding:rxnorm.code 1..1)"
ENTRY_PROFILES = "medplum validates Bundle entries against their base definitions only, not against their meta.profile"
JSON_RULES = {
    "json-duplicate-key.json": "JavaScript's JSON.parse keeps the last of two equal keys silently; FHIR JSON forbids duplicates",
    "json-empty-array.json": "medplum accepts an empty array; FHIR JSON forbids empty arrays (elements are absent or have content)",
}
R5_ONLY = "medplum is set up with the R4 definitions only; ClinicalUseDefinition exists in R5, which we detect and validate as R5"

# file -> (medplum's verdict: True = valid, why it differs from ours)
EXPECTED_DIFFERENCES: dict[str, tuple[bool, str]] = {
    "invalid/bad-code-priority.json": (True, BINDINGS),
    "invalid/bad-code-status.json": (True, BINDINGS),
    "invalid/bad-code-topic-in-bundle.json": (True, BINDINGS),
    "invalid/invariant-eca-5.json": (True, BACKBONE),
    "invalid/invariant-exp-1.json": (True, DATATYPE_INVARIANTS),
    "invalid/invariant-per-1.json": (True, DATATYPE_INVARIANTS),
    "invalid/invariant-qty-3.json": (True, DATATYPE_INVARIANTS),
    "invalid/cardinality-above-max-profile.json": (True, BACKBONE),
    "invalid/fixed-condition-kind.json": (True, BACKBONE),
    "invalid/fixed-expression-language.json": (True, BACKBONE),
    "invalid/fixed-trigger-type.json": (True, BACKBONE),
    "invalid/invariant-eca-4.json": (True, BACKBONE),
    "invalid/missing-condition-expression.json": (True, BACKBONE),
    "invalid/missing-profile-documentation.json": (True, BACKBONE),
    "invalid/missing-profile-priority.json": (True, BACKBONE),
    "invalid/slice-extension-twice.json": (True, BACKBONE),
    "invalid/wrong-reference-target.json": (True, BACKBONE),
    "invalid/slice-rxnorm-without-code.json": (True, SLICE_CHILDREN),
    "invalid/bundle-entry-invalid-resource.json": (True, ENTRY_PROFILES),
    "invalid/json-duplicate-key.json": (True, JSON_RULES["json-duplicate-key.json"]),
    "invalid/json-empty-array.json": (True, JSON_RULES["json-empty-array.json"]),
    "valid/clinicalusedefinition-r5.json": (False, R5_ONLY),
}


@pytest.fixture(scope="module")
def medplum_verdicts() -> dict[str, dict]:
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "Node.js and npm are required for the independent validator comparison"
    if not (MEDPLUM_DIR / "node_modules" / "@medplum" / "core").is_dir():
        install = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=MEDPLUM_DIR, capture_output=True, text=True, timeout=600)
        assert install.returncode == 0, install.stderr[-2000:]
    files = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.glob("*/*.json"))
    run = subprocess.run([node, "validate.mjs", str(SNAPSHOTS), *[str(CORPUS / f) for f in files]],
                         cwd=MEDPLUM_DIR, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    raw = json.loads(run.stdout)
    return {str(Path(path).relative_to(CORPUS)): result for path, result in raw.items()}


def test_medplum_ran_over_the_whole_corpus(medplum_verdicts: dict[str, dict]) -> None:
    assert len(medplum_verdicts) == len(list(CORPUS.glob("*/*.json"))) >= 44


def test_every_difference_with_medplum_is_explained(medplum_verdicts: dict[str, dict]) -> None:
    differences = {}
    for name, result in medplum_verdicts.items():
        ours_valid = not has_errors(validate((CORPUS / name).read_bytes()))
        if ours_valid != result["valid"]:
            differences[name] = result["valid"]
    expected = {name: verdict for name, (verdict, _why) in EXPECTED_DIFFERENCES.items()}
    unexplained = {n: v for n, v in differences.items() if n not in expected}
    stale = sorted(set(expected) - set(differences))
    assert not unexplained, f"medplum disagrees, unexplained: {unexplained} ({[medplum_verdicts[n]['issues'][:2] for n in unexplained]})"
    assert not stale, f"listed differences that no longer occur: {stale}"
    assert differences == expected


def test_medplum_agrees_on_most_of_the_corpus(medplum_verdicts: dict[str, dict]) -> None:
    """The comparison means something only if the two validators agree on the bulk of the corpus."""
    assert len(medplum_verdicts) - len(EXPECTED_DIFFERENCES) >= 40
    # and medplum does reject broken content we reject, at the same place, e.g. a missing required element
    issues = medplum_verdicts["invalid/missing-monograph.json"]["issues"]
    assert any(i.get("expression") == ["MedicationKnowledge.monograph"] for i in issues)
