"""`fhir-module cards`: the service's engine, offline, on a request file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "requests"


def _cards(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fhir_module.cli", "cards", str(path), *extra],
                          capture_output=True, text=True, timeout=120)


def test_the_example_request_gives_the_renal_dose_card() -> None:
    # The example was written on 2026-11-26; replayed as of that day, its results stay in date.
    result = _cards(EXAMPLES / "order-select-renal-moderate.json", "--today", "2026-11-26")
    assert result.returncode == 0, result.stderr
    cards = json.loads(result.stdout)["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["dose-limit"]
    assert "80 mg/day maximum" in cards[0]["summary"]


def test_a_request_without_its_prefetch_is_refused_not_judged(tmp_path: Path) -> None:
    request = json.loads((EXAMPLES / "order-select-renal-moderate.json").read_text())
    del request["prefetch"]["observations"]
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    result = _cards(path)
    assert result.returncode == 1
    assert "lacks observations" in result.stderr and result.stdout == ""


def test_an_unreadable_request_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    result = _cards(path)
    assert result.returncode == 2 and "not JSON" in result.stderr


@pytest.mark.parametrize(("content", "says"), [
    (b"a,b\n1,2\n", "not JSON"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not a UTF-8 text file"),
    (b"[1, 2]", "a JSON list, not a CDS Hooks request"),
    (b'{"resourceType": "Bundle", "type": "collection"}', "a FHIR Bundle, not a CDS Hooks request"),
    (b'{"context": {}}', "it has no 'hook'"),
])
def test_a_file_that_is_not_a_hook_request_says_what_it_is(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(content)
    result = _cards(path)
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr and result.stdout == ""


def test_a_hook_no_service_answers_is_a_refused_request(tmp_path: Path) -> None:
    path = tmp_path / "patient-view.json"
    path.write_text(json.dumps({"hook": "patient-view", "hookInstance": "x", "context": {"patientId": "1"}}))
    result = _cards(path)
    assert result.returncode == 1
    assert "no service for hook 'patient-view'" in result.stderr and "order-select" in result.stderr
