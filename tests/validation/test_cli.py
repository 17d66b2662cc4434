"""`fhir-module validate`: exit status, readable text, the OperationOutcome with --format json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fhir_module.fhir import canonical

CORPUS = Path(__file__).parent / "corpus"
VALID_PD = str(CORPUS / "valid" / "plandefinition.json")
BROKEN_BUNDLE = str(CORPUS / "invalid" / "bundle-entry-invalid-resource.json")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed command line, as a user runs it (through fhir_module.cli, which is fixed)."""
    return subprocess.run([sys.executable, "-m", "fhir_module.cli", "validate", *args], capture_output=True, text=True, timeout=120)


def test_valid_file_exits_0_with_a_short_report() -> None:
    result = run(VALID_PD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"{VALID_PD}: OK")


def test_bundle_errors_exit_1_and_name_the_entry_location() -> None:
    result = run(BROKEN_BUNDLE)
    assert result.returncode == 1
    assert "INVALID" in result.stdout
    assert "ERROR       Bundle.entry[1].resource.action[0].action[0]: [invariant] Invariant eca-2 failed" in result.stdout


def test_json_format_prints_the_operation_outcome() -> None:
    result = run("--format", "json", BROKEN_BUNDLE)
    assert result.returncode == 1
    outcome = json.loads(result.stdout)
    assert outcome["resourceType"] == "OperationOutcome"
    assert ["Bundle.entry[1].resource.action[0].action[0]"] in [i.get("expression") for i in outcome["issue"]]


def test_several_files_give_a_list_in_json_and_the_worst_exit() -> None:
    result = run("--format", "json", VALID_PD, BROKEN_BUNDLE)
    assert result.returncode == 1
    outcomes = json.loads(result.stdout)
    assert [o["resourceType"] for o in outcomes] == ["OperationOutcome", "OperationOutcome"]


def test_unreadable_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    result = run(VALID_PD, str(missing))
    assert result.returncode == 2
    assert f"{missing}: cannot read" in result.stdout


def test_profile_option_and_fhir_version_option(tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"resourceType": "PlanDefinition", "id": "p", "status": "draft"}))
    assert run(str(plain)).returncode == 0
    assert run("--profile", canonical.PROFILE_PLAN_DEFINITION, str(plain)).returncode == 1
    r5 = str(CORPUS / "valid" / "clinicalusedefinition-r5.json")
    assert run(r5).returncode == 0
    assert run("--fhir-version", "R4", r5).returncode == 1


def test_broken_json_is_reported_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"resourceType": "Patient",')
    result = run(str(bad))
    assert result.returncode == 1
    assert "FATAL" in result.stdout and "Invalid JSON at line 1" in result.stdout
    assert "Traceback" not in result.stderr


def test_information_issues_are_counted_and_listed_only_when_verbose() -> None:
    bundle = str(Path(__file__).resolve().parents[2] / "examples" / "levomilnacipran-r4-collection.json")
    quiet, verbose = run(bundle), run(bundle, "--verbose")
    assert quiet.returncode == verbose.returncode == 0
    assert "information; --verbose lists them" in quiet.stdout and "INFORMATION" not in quiet.stdout
    assert "INFORMATION" in verbose.stdout


def test_an_unknown_profile_cannot_validate() -> None:
    """Nothing was checked against it: "cannot validate" (exit 2), not "INVALID" (exit 1)."""
    result = run("--profile", "http://example.org/fhir/StructureDefinition/nope", VALID_PD)
    assert result.returncode == 2
    assert "cannot validate: unknown profile http://example.org/fhir/StructureDefinition/nope" in result.stderr
    assert canonical.PROFILE_PLAN_DEFINITION in result.stderr  # it says which profiles it knows
    assert "INVALID" not in result.stdout + result.stderr


def test_the_command_in_process_leaves_the_collector_as_it_found_it() -> None:
    # It collects cycles more rarely while it runs (validation.cli.GC_THRESHOLDS), for itself only.
    import argparse
    import gc
    import io

    from fhir_module.validation.cli import GC_THRESHOLDS, validate_command

    before = gc.get_threshold()
    assert before != GC_THRESHOLDS
    args = argparse.Namespace(files=[VALID_PD], profile=None, fhir_version=None, verbose=False, format="text",
                              allow_draft=False)
    assert validate_command(args, io.StringIO()) == 0
    assert gc.get_threshold() == before
